"""Polling for a condition while local services start and work."""

from __future__ import annotations

import httpx
import pytest

from cli.processes import wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    answers = iter([None, [], 0, ["ready"], ["later"]])
    assert wait_until("a list", lambda: next(answers), timeout=5, every=0) == ["ready"]


def test_wait_until_treats_a_refused_connection_as_not_yet() -> None:
    calls = []

    def check() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused")
        return "up"

    assert wait_until("the service", check, timeout=5, every=0) == "up"
    assert len(calls) == 3


def test_wait_until_names_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(TimeoutError, match=r"the alert to fire; last: \[\]"):
        wait_until("the alert to fire", lambda: [], timeout=0.05, every=0.01)


def test_wait_until_does_not_hide_other_errors() -> None:
    def check() -> None:
        raise ValueError("bad answer")

    with pytest.raises(ValueError, match="bad answer"):
        wait_until("anything", check, timeout=5, every=0)
