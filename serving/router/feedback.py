"""The router's feedback parser and ledger: they live in ``trending.monitoring.feedback``.

Re-exported here for the router and its callers; the drift service uses the same core on the
cluster.
"""

from trending.monitoring.feedback import (
    FIELDS_HINT,
    MAX_FEEDBACK_BYTES,
    MAX_GENRES,
    MAX_ID_CHARS,
    BadFeedbackError,
    Feedback,
    FeedbackLedger,
    FeedbackOutcome,
    UnknownTitleError,
    parse_feedback,
)

__all__ = [
    "FIELDS_HINT",
    "MAX_FEEDBACK_BYTES",
    "MAX_GENRES",
    "MAX_ID_CHARS",
    "BadFeedbackError",
    "Feedback",
    "FeedbackLedger",
    "FeedbackOutcome",
    "UnknownTitleError",
    "parse_feedback",
]
