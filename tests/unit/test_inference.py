"""The request contract: each malformed request is rejected with a message that says what to fix."""

from __future__ import annotations

import numpy as np
import pytest

from trending.modelling.bundle.inference import (
    InvalidJSONError,
    InvalidRequestError,
    PayloadTooLargeError,
    TitleInput,
    decode_json_body,
    parse_title_ids,
    parse_v1_body,
    parse_v2_input,
    prediction_rows,
)


def test_v1_strings_and_objects_become_titles():
    titles = parse_v1_body({"instances": [" A plot. ", {"plot": "B", "reviews": [" ", "ok"]}]})
    assert [t.plot for t in titles] == ["A plot.", "B"]
    assert titles[1].reviews == ["ok"]


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        (b"\xff{}", InvalidJSONError, "not valid UTF-8 (byte 0)"),
        (b"{", InvalidJSONError, "not valid JSON"),
        (b"[" + b" " * 100 + b"]", PayloadTooLargeError, "more than 50 bytes"),
    ],
)
def test_decode_json_body_errors(raw, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_json_body(raw, max_bytes=50)


def test_error_classes_carry_status_and_kind():
    assert (PayloadTooLargeError.status, PayloadTooLargeError.kind) == (413, "payload_too_large")
    assert (InvalidJSONError.status, InvalidRequestError.status) == (400, 400)


@pytest.mark.parametrize(
    ("shape", "data", "message"),
    [
        ([2], ["a"], "use shape \\[1\\]"),
        ([1], [b"\xff"], "not valid UTF-8"),
        ([1], [3], "element 0 of the input tensor is int"),
        ([1], "abc", "flat list"),
    ],
)
def test_v2_tensor_errors(shape, data, message):
    with pytest.raises(InvalidRequestError, match=message):
        parse_v2_input("BYTES", shape, data)


def test_v2_accepts_bytes_and_n_by_1_shapes():
    titles = parse_v2_input("BYTES", [2, 1], [[b"first"], [b"second"]])
    assert [t.plot for t in titles] == ["first", "second"]


def test_title_ids():
    assert parse_title_ids({"instances": ["a", {"title_id": " b "}]}) == ["a", "b"]
    with pytest.raises(InvalidRequestError, match=r"instances\[0\].title_id is required"):
        parse_title_ids({"instances": [{"plot": "x"}]})


def test_prediction_rows_echo_ids_and_pick_chosen_genres():
    titles = [TitleInput(title_id="t1", plot="x"), TitleInput(plot="y")]
    scores = np.array([[0.9, 0.1], [0.2, 0.7]], dtype=np.float32)
    rows = prediction_rows(titles, scores, scores > 0.5, ["Drama", "Comedy"])
    assert rows[0]["title_id"] == "t1" and rows[0]["genres"] == ["Drama"]
    assert "title_id" not in rows[1] and rows[1]["genres"] == ["Comedy"]
    assert rows[1]["scores"] == {"Drama": pytest.approx(0.2), "Comedy": pytest.approx(0.7)}
