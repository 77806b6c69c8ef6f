"""The predictor's start-up choices: per-request log lines and timing, the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from timing_asgi import TimingClient, TimingMiddleware

from serving.predictor.__main__ import parse
from serving.predictor.http import drop_timing_middleware
from serving.predictor.server import configure_request_logs, install_event_loop

REQUIRED = ["--model_name", "m", "--bundle_dir", "/tmp/bundle"]


@pytest.fixture
def request_loggers():
    """uvicorn.access and kserve.trace as they were configured, restored afterwards."""
    loggers = [logging.getLogger("uvicorn.access"), logging.getLogger("kserve.trace")]
    saved = [(lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    for lg in loggers:
        lg.handlers = [logging.NullHandler()]
        lg.setLevel(logging.INFO)
    yield loggers
    for lg, (handlers, propagate, level) in zip(loggers, saved, strict=True):
        lg.handlers, lg.propagate = handlers, propagate
        lg.setLevel(level)


def test_per_request_log_lines_are_off_by_default():
    args, settings = parse(REQUIRED, {})
    assert settings.uvicorn_access_log is False
    assert args.enable_latency_logging is False


@pytest.mark.parametrize(
    ("flags", "environ"),
    [
        (["--uvicorn_access_log", "true"], {}),
        ([], {"TRENDING_UVICORN_ACCESS_LOG": "true"}),
    ],
)
def test_per_request_log_lines_can_be_turned_on_by_flag_or_env(flags, environ):
    args, settings = parse([*REQUIRED, *flags, "--enable_latency_logging", "true"], environ)
    assert settings.uvicorn_access_log is True
    assert args.enable_latency_logging is True


def test_silenced_request_logs_write_nothing(request_loggers):
    access, trace = request_loggers
    configure_request_logs(access_log=False, latency_logging=False)
    assert not access.hasHandlers()  # uvicorn then skips the access line altogether
    assert not trace.isEnabledFor(logging.INFO)


def test_request_logs_left_on_keep_their_handlers(request_loggers):
    access, trace = request_loggers
    configure_request_logs(access_log=True, latency_logging=True)
    assert access.hasHandlers()
    assert trace.isEnabledFor(logging.INFO)


@pytest.fixture
def restore_loop_policy():
    policy = asyncio.get_event_loop_policy()
    yield
    with contextlib.suppress(RuntimeError):  # the loop install_event_loop set, if any
        asyncio.get_event_loop_policy().get_event_loop().close()
    asyncio.set_event_loop_policy(policy)


def test_auto_event_loop_is_uvloop_when_installed(restore_loop_policy):
    uvloop = pytest.importorskip("uvloop")
    assert install_event_loop("auto") == "uvloop"
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_asyncio_event_loop_keeps_the_default(restore_loop_policy):
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # as an earlier start-up leaves it
    assert install_event_loop("asyncio") == "asyncio"
    loop = asyncio.new_event_loop()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()


def timed_app() -> tuple[FastAPI, list[str]]:
    """A FastAPI app behind KServe's timing middleware, and the timings it reports."""
    timings: list[str] = []

    class Recorder(TimingClient):
        def timing(self, metric_name, timing, tags):
            timings.append(metric_name)

    app = FastAPI()
    app.add_api_route("/ping", lambda: {"ok": True})
    app.add_middleware(TimingMiddleware, client=Recorder())
    return app, timings


@pytest.mark.parametrize("drop", [False, True])
def test_timing_middleware_is_dropped_when_the_server_starts(drop):
    app, timings = timed_app()
    if drop:
        drop_timing_middleware(app)
    with TestClient(app) as client:  # runs the start-up handlers
        assert client.get("/ping").json() == {"ok": True}
    assert (timings == []) is drop


@pytest.mark.parametrize(
    ("module", "required"),
    [
        ("serving.predictor.__main__", REQUIRED),
        ("serving.transformer.__main__", ["--model_name", "m", "--predictor_host", "h:1"]),
    ],
)
def test_more_than_one_worker_is_a_usage_error_that_says_how_to_scale(module, required, capsys):
    import importlib

    program = importlib.import_module(module)
    assert program.parse(required, {})[0].workers == 1
    with pytest.raises(SystemExit) as exit_info:
        program.parse([*required, "--workers", "2"], {})
    assert exit_info.value.code == 2
    assert (
        "--workers 2: one worker per pod; scale out with replicas instead"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max_payload_bytes", "0"], "--max_payload_bytes must be at least 1, got 0"),
        (["--max_instances", "-1"], "--max_instances must be at least 0, got -1"),
        (["--payload_log_queue", "0"], "--payload_log_queue must be at least 1, got 0"),
        (["--max_batch_size", "-1"], "--max_batch_size must be at least 1, got -1"),
        (["--max_batch_wait_ms", "-5"], "--max_batch_wait_ms must be at least 0, got -5"),
        (["--payload_log_batch_events", "0"], "--payload_log_batch_events must be at least 1"),
        (["--payload_log_batch_seconds", "0"], "--payload_log_batch_seconds must be above 0"),
        (["--payload_log_url", "ftp://h/x"], "--payload_log_url: payload log sink 'ftp://h/x'"),
    ],
)
def test_out_of_range_limits_are_usage_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse([*REQUIRED, *flags], {})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_limits_from_the_environment_are_checked_too(capsys):
    with pytest.raises(SystemExit):
        parse(REQUIRED, {"TRENDING_MAX_BATCH_SIZE": "0"})
    assert "TRENDING_MAX_BATCH_SIZE must be at least 1, got 0" in capsys.readouterr().err


def test_an_object_store_payload_log_gets_the_batch_flags(tmp_path):
    from serving.predictor.server import payload_logger

    uri = (tmp_path / "payloads").as_uri()
    flags = ["--payload_log_url", uri, "--payload_log_batch_events", "7"]
    args, settings = parse([*REQUIRED, *flags, "--endpoint", "canary"], {})
    logger = payload_logger(args, settings, None)
    try:
        assert (logger.target.sink_url, logger.batch_events, logger.batch_seconds) == (uri, 7, 10.0)
        assert logger.target.endpoint == "canary"
    finally:
        logger.close()
