"""Payload-log events carry any request id: ce-* headers are percent-encoded (CloudEvents 3.1.3.2)."""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import pytest

from trending.payload_log import PayloadLogger, PayloadLogTarget, encode_header_value

PRINTABLE = {chr(c) for c in range(0x21, 0x7F)}


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("req-1:a/b", "req-1:a/b"),
        ("two words", "two%20words"),
        ('say "hi"', "say%20%22hi%22"),
        ("100%", "100%25"),
        ("résumé", "r%C3%A9sum%C3%A9"),
        ("line\nbreak", "line%0Abreak"),
    ],
)
def test_header_values_are_percent_encoded_only_where_needed(value, encoded):
    assert encode_header_value(value) == encoded
    assert unquote(encoded) == value


def test_events_with_unusual_ids_are_delivered_not_dropped():
    received: list[httpx.Request] = []

    def sink(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(202)

    ids = ["plain-1", "résumé 2", "tab\there", '"quoted"', "日本"]
    logger = PayloadLogger(
        PayloadLogTarget("http://sink.invalid/events", "http://predictor", "genres"),
        transport=httpx.MockTransport(sink),
    ).start()
    for event_id in ids:
        logger.log_request(event_id, {"instances": [{"plot": "A heist."}]})
    logger.close()

    assert (logger.sent, logger.dropped) == (len(ids), 0)
    assert [unquote(r.headers["ce-id"]) for r in received] == ids
    for request in received:
        for name, value in request.headers.items():
            if name.startswith("ce-"):
                assert set(value) <= PRINTABLE, (name, value)
