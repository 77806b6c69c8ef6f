"""Payload-log events: ce-* headers percent-encoded (CloudEvents 3.1.3.2) so any request id
travels; object store sinks batch events into JSON-lines objects, counting what they drop."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from trending.monitoring.payload_log import PayloadLogger, PayloadLogTarget, encode_header_value
from trending.registry.objectstore import open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures import s3

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


def _store_logger(uri: str, **kwargs) -> PayloadLogger:
    target = PayloadLogTarget(uri, "http://pod-7:8080", "genres", endpoint="canary")
    return PayloadLogger(target, **kwargs).start()


def _stored_events(uri: str) -> dict[str, list[dict]]:
    store = open_store(uri)
    return {
        key: [json.loads(line) for line in store.get_bytes(key)[0].splitlines()]
        for key in sorted(store.list(""))
    }


def test_object_store_sink_writes_batches_of_structured_cloudevents(tmp_path):
    uri = (tmp_path / "payloads").as_uri()
    logger = _store_logger(uri, batch_events=4, batch_seconds=60)
    for i in range(5):
        logger.log_request(f"id-{i}", {"instances": [{"plot": f"Plot {i}."}]}, model_id="m:3")
        logger.log_response(f"id-{i}", {"predictions": [{"genres": ["Drama"]}]}, model_id="m:3")
    logger.close()

    stored = _stored_events(uri)
    assert sorted(len(events) for events in stored.values()) == [2, 4, 4]  # 10 events, batches of 4
    assert (logger.sent, logger.dropped) == (10, 0)
    day = datetime.now(UTC).strftime("%Y/%m/%d")
    assert all(
        re.fullmatch(rf"{day}/predictor-canary-pod-7-\d{{6}}-[0-9a-f]{{12}}\.jsonl", k)
        for k in stored
    )
    events = sorted((e for batch in stored.values() for e in batch), key=lambda e: e["time"])
    assert [(e["id"], e["type"].rsplit(".", 1)[1]) for e in events] == [
        (f"id-{i}", kind) for i in range(5) for kind in ("request", "response")
    ]
    first = events[0]
    assert first["specversion"] == "1.0" and first["modelid"] == "m:3"
    assert first["inferenceservicename"] == "genres" and first["endpoint"] == "canary"
    assert first["data"] == {"instances": [{"plot": "Plot 0."}]}


def test_a_held_batch_is_written_when_its_first_event_is_batch_seconds_old(tmp_path):
    uri = (tmp_path / "payloads").as_uri()
    logger = _store_logger(uri, batch_events=100, batch_seconds=0.2)
    logger.log_request("only", {"instances": ["A heist."]})
    deadline = time.monotonic() + 10
    while not _stored_events(uri) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [len(b) for b in _stored_events(uri).values()] == [1]  # written before close
    logger.close()
    assert [len(b) for b in _stored_events(uri).values()] == [1]
    assert (logger.sent, logger.dropped) == (1, 0)


def test_batches_the_store_refuses_are_dropped_and_counted(tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the store's folder should be")
    drops: list[int] = []
    logger = _store_logger(blocked.as_uri(), batch_events=3, on_drop=drops.append)
    for i in range(7):
        logger.log_request(f"id-{i}", {"instances": ["A heist."]})  # never raises
    logger.close()
    assert (logger.sent, logger.dropped) == (0, 7)
    assert drops == [3, 3, 1]


@pytest.mark.integration  # moto_server
def test_s3_sink_writes_objects_a_store_client_can_read(tmp_path, monkeypatch):
    moto = s3.MotoServer().start()
    try:
        for name, value in s3.s3_env(moto.endpoint).items():
            monkeypatch.setenv(name, value)
        uri = f"s3://{s3.new_bucket(moto.endpoint)}/payloads"
        logger = _store_logger(uri, batch_events=2)
        logger.log_request("s-1", {"instances": ["A heist."]})
        logger.log_response("s-1", {"predictions": [{"genres": ["Crime"]}]})
        logger.close()
        [batch] = _stored_events(uri).values()
        assert [e["id"] for e in batch] == ["s-1", "s-1"]
    finally:
        moto.stop()


@pytest.mark.parametrize("url", ["ftp://host/x", "sink.example/events", "s3://", "file://"])
def test_sinks_other_than_http_or_an_object_store_are_refused(url):
    with pytest.raises(ValueError, match="use an http"):
        PayloadLogger(PayloadLogTarget(url, "http://p", "genres"))


@pytest.mark.parametrize(
    ("token", "authorization"), [("s3cret-token", "Bearer s3cret-token"), (None, None)]
)
def test_http_sinks_send_the_bearer_token_the_drift_service_requires(token, authorization):
    received: list[httpx.Request] = []

    def sink(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(202)

    logger = PayloadLogger(
        PayloadLogTarget("http://drift.invalid/", "http://predictor", "m"),
        transport=httpx.MockTransport(sink),
        token=token,
    ).start()
    logger.log_request("e-1", {"instances": ["x"]})
    logger.log_response("e-1", {"predictions": []})
    logger.close()
    assert [r.headers.get("authorization") for r in received] == [authorization] * 2
