"""Aliases: compare-and-swap moves (promote, rollback), the canary, and pins gc must keep."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Literal

from trending.registry.objectstore import ObjectNotFoundError, PreconditionFailedError
from trending.registry.records import (
    CANARY,
    HISTORY_LIMIT,
    PRODUCTION,
    ROLLBACK_DEPTH,
    AliasChange,
    AliasConflictError,
    AliasNotFoundError,
    AliasRecord,
    PinRecord,
    RegistryError,
    RollbackUnavailableError,
    VersionNotFoundError,
    check_actor_reason,
    check_alias,
    utc_now,
)
from trending.registry.versions import Versions


class Aliases(Versions):
    """Moves one model's aliases atomically and keeps its pins."""

    def _swap_alias(
        self, name: str, change: Callable[[AliasRecord | None], AliasRecord | None]
    ) -> tuple[AliasRecord | None, AliasRecord | None]:
        """Compare-and-swap one alias: read it, apply ``change``, write only if unchanged.

        ``change`` returning None means "nothing to do". Returns (before, after).
        """
        key = self._alias_key(name)
        before, etag = self._read_alias(name)
        after = change(before)
        if after is None:
            return before, None
        try:
            self.store.put_bytes(
                key,
                after.model_dump_json().encode(),
                if_none_match=etag is None,
                if_match=etag,
            )
        except PreconditionFailedError:
            raise AliasConflictError(
                f"alias {name!r} of {self.model_name} changed while this update was being made "
                "(a concurrent promote, rollback or canary change won); check "
                "`trending registry list` and retry if the change is still wanted"
            ) from None
        if after.version is not None:
            self._confirm_still_published(name, before, after)
        return before, after

    def _confirm_still_published(
        self, name: str, before: AliasRecord | None, after: AliasRecord
    ) -> None:
        """Undo an alias move whose target gc deleted meanwhile (gc re-checks aliases likewise)."""
        assert after.version is not None
        record = self._read_record(after.version)
        if record is not None and record.status == "published":
            return
        restored = (
            before.model_copy(update={"nonce": uuid.uuid4().hex})
            if before is not None
            else after.model_copy(update={"version": None, "nonce": uuid.uuid4().hex})
        )
        with suppress(PreconditionFailedError, ObjectNotFoundError):
            _, etag = self.store.get_bytes(self._alias_key(name))
            self.store.put_bytes(
                self._alias_key(name), restored.model_dump_json().encode(), if_match=etag
            )
        raise VersionNotFoundError(
            f"version {after.version} of {self.model_name} was removed by gc during the update; "
            f"alias {name!r} was left as it was — pick another version"
        )

    def _move_alias(
        self,
        name: str,
        version: int,
        *,
        action: Literal["promote", "rollback"],
        actor: str,
        reason: str,
        evidence: dict[str, Any] | None,
        new_previous: Callable[[AliasRecord | None], list[int]],
    ) -> Callable[[AliasRecord | None], AliasRecord | None]:
        def change(before: AliasRecord | None) -> AliasRecord | None:
            current = before.version if before is not None else None
            if current == version:
                return None
            at = utc_now()
            entry = AliasChange(
                action=action,
                version=version,
                from_version=current,
                actor=actor,
                reason=reason,
                at=at,
                evidence=evidence or {},
            )
            history = (before.history if before is not None else []) + [entry]
            return AliasRecord(
                model_name=self.model_name,
                name=name,
                version=version,
                actor=actor,
                reason=reason,
                updated_at=at,
                evidence=evidence or {},
                previous=new_previous(before)[-ROLLBACK_DEPTH:],
                history=history[-HISTORY_LIMIT:],
            )

        return change

    def promote(
        self,
        version: int,
        *,
        actor: str,
        reason: str,
        alias: str = PRODUCTION,
        evidence: dict[str, Any] | None = None,
    ) -> AliasRecord:
        """Point ``alias`` at ``version`` atomically; the old target becomes the rollback target.

        Promoting the version the alias already names changes nothing and logs nothing.

        Raises:
            VersionNotFoundError: ``version`` is not a complete version.
            AliasConflictError: The alias changed concurrently; nothing was written.
        """
        check_actor_reason(actor, reason)
        check_alias(alias)
        version = self._published(int(version)).version

        def previous(before: AliasRecord | None) -> list[int]:
            if before is None:
                return []
            return before.previous + ([before.version] if before.version is not None else [])

        change = self._move_alias(
            alias,
            version,
            action="promote",
            actor=actor,
            reason=reason,
            evidence=evidence,
            new_previous=previous,
        )
        before, after = self._swap_alias(alias, change)
        if after is None:
            assert before is not None
            return before
        self._append_event(
            "promote",
            actor=actor,
            reason=reason,
            version=version,
            details={
                "alias": alias,
                "from_version": before.version if before is not None else None,
                "evidence": evidence or {},
            },
        )
        return after

    def rollback(
        self,
        *,
        actor: str,
        reason: str,
        alias: str = PRODUCTION,
        evidence: dict[str, Any] | None = None,
    ) -> AliasRecord:
        """Point ``alias`` back at the version it named before the last promotion.

        Raises:
            AliasNotFoundError: The alias is not set.
            RollbackUnavailableError: The alias has no earlier version, or gc removed it.
            AliasConflictError: The alias changed concurrently; nothing was written.
        """
        check_actor_reason(actor, reason)
        check_alias(alias)
        current, _ = self._read_alias(alias)
        if current is None or current.version is None:
            raise AliasNotFoundError(
                f"alias {alias!r} of {self.model_name} is not set, so there is nothing to roll "
                "back; promote a version instead"
            )
        if not current.previous:
            raise RollbackUnavailableError(
                f"alias {alias!r} of {self.model_name} has no earlier version to roll back to "
                f"(it has only ever named version {current.version}); promote a version instead"
            )
        target = current.previous[-1]
        try:
            self._published(target)
        except RegistryError as exc:
            raise RollbackUnavailableError(
                f"cannot roll {alias!r} back to version {target}: {exc}"
            ) from None

        def change(before: AliasRecord | None) -> AliasRecord | None:
            # Act only on the state we checked; anything else is a concurrent change.
            if before is None or before.nonce != current.nonce:
                raise AliasConflictError(
                    f"alias {alias!r} of {self.model_name} changed during the rollback; "
                    "check `trending registry list` and retry if still wanted"
                )
            return self._move_alias(
                alias,
                target,
                action="rollback",
                actor=actor,
                reason=reason,
                evidence=evidence,
                new_previous=lambda b: b.previous[:-1] if b is not None else [],
            )(before)

        before, after = self._swap_alias(alias, change)
        assert before is not None and after is not None
        self._append_event(
            "rollback",
            actor=actor,
            reason=reason,
            version=target,
            details={"alias": alias, "from_version": before.version, "evidence": evidence or {}},
        )
        return after

    def set_canary(self, version: int, *, actor: str, reason: str) -> AliasRecord:
        """Start (or replace) the canary: point the ``canary`` alias at ``version``.

        Raises:
            VersionNotFoundError: ``version`` is not a complete version.
            RegistryError: ``version`` is the production version already.
            AliasConflictError: The canary changed concurrently.
        """
        check_actor_reason(actor, reason)
        version = self._published(int(version)).version
        if self._alias_version(PRODUCTION) == version:
            raise RegistryError(
                f"version {version} of {self.model_name} is production already; "
                "a canary must be a different version"
            )
        change = self._move_alias(
            CANARY,
            version,
            action="promote",
            actor=actor,
            reason=reason,
            evidence=None,
            new_previous=lambda b: [],
        )
        before, after = self._swap_alias(CANARY, change)
        if after is None:
            assert before is not None
            return before
        self._append_event(
            "canary_start",
            actor=actor,
            reason=reason,
            version=version,
            details={"replaced_version": before.version if before is not None else None},
        )
        return after

    def clear_canary(self, *, actor: str, reason: str) -> None:
        """Stop the canary (clear the ``canary`` alias); does nothing when none is set.

        Raises:
            AliasConflictError: The canary changed concurrently.
        """
        check_actor_reason(actor, reason)

        def change(before: AliasRecord | None) -> AliasRecord | None:
            if before is None or before.version is None:
                return None
            at = utc_now()
            entry = AliasChange(
                action="clear",
                version=None,
                from_version=before.version,
                actor=actor,
                reason=reason,
                at=at,
            )
            return before.model_copy(
                update={
                    "version": None,
                    "actor": actor,
                    "reason": reason,
                    "updated_at": at,
                    "evidence": {},
                    "previous": [],
                    "history": [*before.history, entry][-HISTORY_LIMIT:],
                    "nonce": uuid.uuid4().hex,
                }
            )

        before, after = self._swap_alias(CANARY, change)
        if after is not None and before is not None:
            self._append_event(
                "canary_stop", actor=actor, reason=reason, version=before.version, details={}
            )

    # ---- pins -------------------------------------------------------------------------------

    def pin(self, version: int, *, actor: str, reason: str) -> None:
        """Keep ``version`` through every gc until it is unpinned."""
        check_actor_reason(actor, reason)
        version = self._published(int(version)).version
        pin = PinRecord(version=version, actor=actor, reason=reason, at=utc_now())
        self.store.put_bytes(self._pin_key(version), pin.model_dump_json().encode())
        self._append_event("pin", actor=actor, reason=reason, version=version)

    def unpin(self, version: int, *, actor: str, reason: str) -> None:
        """Let gc remove ``version`` again (when no alias names it)."""
        check_actor_reason(actor, reason)
        if not self.store.exists(self._pin_key(int(version))):
            raise VersionNotFoundError(
                f"version {version} of {self.model_name} is not pinned; "
                "`trending registry list` shows the pins"
            )
        self.store.delete(self._pin_key(int(version)))
        self._append_event("unpin", actor=actor, reason=reason, version=int(version))

    def pinned(self) -> list[int]:
        """Pinned version numbers, ascending."""
        return sorted(self._numbers("pins"))


def stage_new_version(registry: Aliases, version: int, *, actor: str, reason: str) -> str:
    """Put a freshly registered version on its way to traffic; return the alias it got.

    The first version has nothing to be compared with and becomes ``production``; every later
    one becomes the ``canary``, which the canary controller promotes or rolls back on evidence.
    """
    if registry.alias("production") is None:
        registry.promote(version, actor=actor, reason=f"first version: {reason}")
        return "production"
    registry.set_canary(version, actor=actor, reason=reason)
    return "canary"
