"""The registry's append-only event log: one create-only object per event, never rewritten."""

from __future__ import annotations

import re
import threading
import uuid
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from trending.registry.layout import RegistryLayout
from trending.registry.objectstore import ObjectNotFoundError
from trending.registry.records import Event, EventKindError, check_actor_reason, utc_now

# Kinds the registry writes itself; log_event refuses them so the log cannot claim, say, a
# promotion that never moved an alias.
REGISTRY_EVENT_KINDS = frozenset(
    {"register", "promote", "rollback", "canary_start", "canary_stop", "pin", "unpin", "gc"}
)
# Kinds other parts of the platform write through log_event (any other well-formed kind is fine).
KNOWN_EXTERNAL_EVENT_KINDS = frozenset(
    {"retrain_requested", "retrain_started", "retrain_finished", "gate_decision"}
)


_KIND_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")


class EventLog(RegistryLayout):
    """Who did what, when and why, under ``models/<name>/events/``."""

    _clock_lock = threading.Lock()
    _last_event_time: datetime | None = None

    def log_event(
        self,
        kind: str,
        *,
        actor: str,
        reason: str,
        details: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> Event:
        """Append an event written by another part of the platform (pipelines, trigger, canary).

        Args:
            kind: e.g. ``retrain_requested``, ``retrain_started``, ``retrain_finished``,
                ``gate_decision``; register/promote/rollback/canary/pin/gc events are written by
                the registry operations themselves and refused here.
            actor: Who acts.
            reason: Why.
            details: Metrics, evidence, run ids (JSON-serialisable).
            version: The version the event is about, if any.

        Returns:
            The stored event.

        Raises:
            EventKindError: The kind is malformed or reserved.
        """
        if not _KIND_RE.match(kind):
            raise EventKindError(
                f"invalid event kind {kind!r}: use lowercase letters, digits, '_', '.' or '-'"
            )
        if kind in REGISTRY_EVENT_KINDS:
            raise EventKindError(
                f"{kind!r} events are written by the registry operation itself; call "
                "register_version / promote / rollback / set_canary / clear_canary / pin / gc"
            )
        check_actor_reason(actor, reason)
        return self._append_event(
            kind, actor=actor, reason=reason, version=version, details=details
        )

    def _event_time(self) -> datetime:
        # Strictly increasing within a process, so a process's events keep their order.
        with EventLog._clock_lock:
            at = utc_now()
            last = EventLog._last_event_time
            if last is not None and at <= last:
                at = last + timedelta(microseconds=1)
            EventLog._last_event_time = at
            return at

    def _append_event(
        self,
        kind: str,
        *,
        actor: str,
        reason: str,
        version: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> Event:
        at = self._event_time()
        event_id = f"{at:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:12]}"
        event = Event(
            id=event_id,
            model_name=self.model_name,
            kind=kind,
            version=version,
            actor=actor,
            reason=reason,
            at=at,
            details=details or {},
        )
        self.store.put_bytes(
            f"{self.root}/events/{event_id}.json",
            event.model_dump_json().encode(),
            if_none_match=True,
        )
        return event

    def events(self, *, limit: int | None = None) -> list[Event]:
        """Events in the order they happened (oldest first); the last ``limit`` when given."""
        keys = self.store.list(f"{self.root}/events")
        if limit is not None:
            keys = keys[-limit:] if limit > 0 else []
        events = []
        for key in keys:
            with suppress(ObjectNotFoundError):
                data, _ = self.store.get_bytes(key)
                events.append(Event.model_validate_json(data))
        return sorted(events, key=lambda e: (e.at, e.id))
