"""Personal data in free text: find it and mask it before it is stored, featurized or logged.

Plots and reviews are written by people and sometimes carry an e-mail address, a phone number,
a link or a social-media handle. None of that tells a model anything about genre, and keeping it
would copy personal data into snapshots, Feast, bundles' drift references and payload logs. So
the ingest path (``trending.data.schema.validate_titles``), the snapshot writer, the shared
featurization (``trending.features.featurize.model_input_text``) and the payload logger replace
each finding with a fixed token (``[email]``, ``[phone]``, ``[url]``, ``[handle]``).

Masking is idempotent (a masked text has nothing left to mask), so every stage can apply it
without counting twice; what a snapshot holds is counted from its tokens
(``masked_counts``), which survives any process boundary between the stages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import pandas as pd

PersonalDataKind = Literal["email", "phone", "url", "handle"]
PERSONAL_DATA_KINDS: tuple[PersonalDataKind, ...] = ("url", "email", "phone", "handle")
# The columns people write; titles, ids and genres are catalogue data, not free text.
FREE_TEXT_COLUMNS = ("plot", "reviews")

MASK_TOKENS: dict[PersonalDataKind, str] = {
    "email": "[email]",
    "phone": "[phone]",
    "url": "[url]",
    "handle": "[handle]",
}

_URL = re.compile(
    r"(?i)\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|co|ly|me|tv|info|biz)/[^\s<>\"']*"
)
_EMAIL = re.compile(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b")
# A phone number: optional +country code, then 2-5 groups of digits split by space, dot, dash or
# parentheses. Whether a candidate is a number is decided by _is_phone (digit count, not years).
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?![\w])"
)
_HANDLE = re.compile(r"(?<![\w.@\]])@[A-Za-z0-9_]{2,30}\b")
_YEAR = re.compile(r"(1[89]|20)\d\d")


def _is_phone(candidate: str) -> bool:
    """9 to 15 digits, and not a run of years or counts ("1939 1945 1950", "1984-1989")."""
    digits = sum(ch.isdigit() for ch in candidate)
    if not 9 <= digits <= 15:
        return False
    groups = re.findall(r"\d+", candidate)
    return not all(len(g) == 4 and _YEAR.fullmatch(g) for g in groups)


def mask_text(text: str, counts: Counter[str] | None = None) -> str:
    """``text`` with every e-mail address, URL, phone number and @handle replaced by its token.

    Args:
        text: Free text (a plot or a review).
        counts: When given, incremented per kind found.
    """
    if not text:
        return text
    found: Counter[str] = Counter()

    def replace(kind: PersonalDataKind) -> Any:
        def _sub(match: re.Match[str]) -> str:
            if kind == "phone" and not _is_phone(match.group(0)):
                return match.group(0)
            found[kind] += 1
            return MASK_TOKENS[kind]

        return _sub

    # URLs first (they can hold an @ or digits), then e-mails (before handles: same @).
    masked = _URL.sub(replace("url"), text)
    masked = _EMAIL.sub(replace("email"), masked)
    masked = _PHONE.sub(replace("phone"), masked)
    masked = _HANDLE.sub(replace("handle"), masked)
    if counts is not None:
        counts.update(found)
    return masked


def mask_texts(texts: Iterable[Any], counts: Counter[str] | None = None) -> list[Any]:
    """Each string of ``texts`` masked; anything else (None, a wrong type) passes unchanged."""
    return [mask_text(t, counts) if isinstance(t, str) else t for t in texts]


def mask_value(value: Any, counts: Counter[str] | None = None) -> Any:
    """Mask every string inside a JSON-like value (dicts, lists, strings); keys are kept."""
    if isinstance(value, str):
        return mask_text(value, counts)
    if isinstance(value, Mapping):
        return {k: mask_value(v, counts) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v, counts) for v in value]
    return value


def mask_row(row: dict[str, Any], counts: Counter[str] | None = None) -> dict[str, Any]:
    """A title row (dict) with its plot and reviews masked; other fields unchanged."""
    out = dict(row)
    if isinstance(out.get("plot"), str):
        out["plot"] = mask_text(out["plot"], counts)
    reviews = out.get("reviews")
    if isinstance(reviews, list | tuple):
        out["reviews"] = mask_texts(reviews, counts)
    elif isinstance(reviews, str):
        out["reviews"] = mask_text(reviews, counts)
    return out


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a titles frame with personal data masked in its free-text columns."""
    out = frame.copy()
    if "plot" in out.columns:
        out["plot"] = mask_texts(out["plot"].tolist())
    if "reviews" in out.columns:
        out["reviews"] = [
            mask_texts(list(r))
            if isinstance(r, list | tuple) or hasattr(r, "tolist")
            else mask_value(r)
            for r in out["reviews"].tolist()
        ]
    return out


def masked_counts(*frames: pd.DataFrame) -> dict[str, int]:
    """How many findings of each kind the frames' free-text columns carry as mask tokens."""
    counts = dict.fromkeys(PERSONAL_DATA_KINDS, 0)
    for frame in frames:
        for column in FREE_TEXT_COLUMNS:
            if column not in frame.columns:
                continue
            for cell in frame[column].tolist():
                texts = (
                    list(cell)
                    if isinstance(cell, list | tuple) or hasattr(cell, "tolist")
                    else [cell]
                )
                for text in texts:
                    if isinstance(text, str) and "[" in text:
                        for kind, token in MASK_TOKENS.items():
                            counts[kind] += text.count(token)
    return counts
