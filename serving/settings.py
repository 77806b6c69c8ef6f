"""One settings pattern for every service program: a flag and its ``TRENDING_*`` variable are one field.

Each ``python -m serving.<name>`` declares one :class:`ServiceSettings` subclass. Every field
``foo_bar`` is both the flag ``--foo_bar`` (underscores, as KServe's own flags) and the variable
``TRENDING_FOO_BAR``; a flag wins over the variable, the variable over the field's default.
A secret (a ``SecretStr`` field) has only its variable: no credential on a command line.
Types, ranges (``Field(ge=..., gt=...)``) and cross-field rules are the pydantic model's, so a
value is checked the same way whichever face it came through.

    class DriftSettings(ServiceSettings):
        port: int = Field(8080, ge=0, description="HTTP port.")

    parser = settings_parser(DriftSettings, prog="python -m serving.drift", description=__doc__)
    args, settings = load_settings(DriftSettings, parser)          # exits 2 with one line on error

A KServe program passes ``parents=[kserve.model_server.parser]``: KServe's flags stay in ``args``,
the program's own in ``settings``. A ``TRENDING_*`` variable in the environment that the program
does not define is a start-up error naming it, so a renamed chart variable cannot be ignored
silently. The platform's variables (``trending.settings.Settings``: ``TRENDING_HOME``,
``TRENDING_MODEL_NAME``...) are declared once there and known to every program: the chart's one
settings ConfigMap carries them to every container, and a developer's shell to every local process.
A program that builds the platform settings itself sets ``reads_platform_settings`` (documentation
of intent; the variables are known either way).

Every program has ``--host`` (loopback unless the profile is ``cluster``) and ``--port_file``:
a port flag of 0 lets the system pick a free port, and the program writes the ports it bound to the
port file (``serving.listening``), which is how ``cli.processes.running_service`` finds them.

Start-up failures after parsing (a missing alias, an unreadable file) go through :func:`exit_with`:
one line saying what to fix, no traceback.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

ENV_PREFIX = "TRENDING_"

# The environment the settings are read from while load_settings() builds them (None: os.environ).
_ENVIRON: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "trending_service_environ", default=None
)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' env source reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class ServiceSettings(BaseSettings):
    """Base of every service program's settings (``TRENDING_*`` variables, flags of the same names).

    Subclasses add fields; each field's ``description`` is its flag's help text.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", env_ignore_empty=True, validate_default=True
    )

    # True for programs that also build trending.settings.Settings (home, feature repo...).
    reads_platform_settings: ClassVar[bool] = False

    host: str = Field(
        default_factory=lambda: profile_host(),
        description="Interface to bind. Default: 0.0.0.0 in the cluster profile "
        "(TRENDING_PROFILE=cluster, as the chart's settings ConfigMap sets it: the pod's Service "
        "and probes reach it), else 127.0.0.1 (this machine only).",
    )
    port_file: Path | None = Field(
        None,
        description="Once listening, write the bound ports here as one JSON object "
        '(e.g. {"http": 41234}): how the process that started this one learns the ports the '
        "system chose for port 0.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init arguments) over the environment; no dotenv, no secrets directory."""
        environ = _ENVIRON.get()
        env = env_settings if environ is None else _MappingEnvSource(settings_cls, environ)
        return init_settings, env

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of a field, e.g. ``TRENDING_REGISTRY_URI``."""
        return f"{ENV_PREFIX}{field.upper()}"

    @classmethod
    def own_variables(cls) -> set[str]:
        """The ``TRENDING_*`` variables of this program's own fields."""
        return {cls.variable(name) for name in cls.model_fields}

    @classmethod
    def known_variables(cls) -> set[str]:
        """Every ``TRENDING_*`` variable accepted in this program's environment.

        Its own fields' plus the platform's (declared once, in ``trending.settings.Settings``).
        """
        return cls.own_variables() | platform_variables()


# Variables of the `trending` command read outside the platform settings: the audit log's actor
# (cli/registry.py) and the id a retraining run is started with (trending/rollout/retrain.py).
CLI_VARIABLES = frozenset({"TRENDING_ACTOR", "TRENDING_RETRAIN_RUN_ID"})


def profile_host() -> str:
    """The default bind address: all interfaces in the cluster profile, loopback otherwise.

    Read from ``TRENDING_PROFILE`` in the environment the settings are being built from.
    """
    environ = _ENVIRON.get()
    profile = (os.environ if environ is None else environ).get(f"{ENV_PREFIX}PROFILE", "local")
    return "0.0.0.0" if profile == "cluster" else "127.0.0.1"  # noqa: S104 - a pod's Service


def platform_variables() -> set[str]:
    """The platform's ``TRENDING_*`` variables: ``trending.settings.Settings`` and the CLI's."""
    from trending.settings import Settings

    return {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields} | CLI_VARIABLES


S = TypeVar("S", bound=ServiceSettings)


def flag(field: str) -> str:
    """The flag of a field: ``registry_uri`` -> ``--registry_uri``."""
    return f"--{field}"


def env_only(info: FieldInfo) -> bool:
    """A secret (``SecretStr``) comes from the environment (a Kubernetes Secret), never a flag."""
    annotation = info.annotation
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def _help(settings_cls: type[ServiceSettings], name: str, info: FieldInfo) -> str:
    default = (
        "" if info.is_required() else f" Default: {info.get_default(call_default_factory=True)}."
    )
    return f"{info.description or ''}{default} Env: {settings_cls.variable(name)}.".strip()


def add_settings_flags(
    parser: argparse.ArgumentParser, settings_cls: type[ServiceSettings]
) -> None:
    """Add ``--<field>`` for every field of ``settings_cls`` (a field KServe's parser has is refused).

    The flags take strings and leave absent flags unset (``argparse.SUPPRESS``): pydantic converts
    and checks them exactly as it does the environment's strings.
    """
    taken = {opt for action in parser._actions for opt in action.option_strings}
    group = parser.add_argument_group(f"{settings_cls.__name__} (each also a TRENDING_* variable)")
    for name, info in settings_cls.model_fields.items():
        if env_only(info):
            continue
        if flag(name) in taken:
            raise ValueError(f"{settings_cls.__name__}.{name}: {flag(name)} is already a flag")
        group.add_argument(
            flag(name),
            dest=name,
            default=argparse.SUPPRESS,
            metavar=name.upper(),
            help=_help(settings_cls, name, info),
        )


class ServiceArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (exit 2), not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message> (see --help)`` and exit 2."""
        exit_with(self.prog, f"{message} (see --help)", code=2)


def settings_parser(
    settings_cls: type[ServiceSettings],
    *,
    prog: str,
    description: str | None = None,
    parents: Sequence[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    """An argparse parser with ``parents``' flags plus one flag per settings field."""
    parser = ServiceArgumentParser(prog=prog, description=description, parents=list(parents))
    add_settings_flags(parser, settings_cls)
    return parser


def unknown_variables(settings_cls: type[ServiceSettings], environ: Mapping[str, str]) -> list[str]:
    """``TRENDING_*`` variables in ``environ`` that ``settings_cls`` does not define, sorted."""
    known = settings_cls.known_variables()
    return sorted(key for key in environ if key.startswith(ENV_PREFIX) and key not in known)


def _describe(settings_cls: type[ServiceSettings], error: Any, from_flags: set[str]) -> str:
    """One validation error as "<flag or variable> <what is wrong>"."""
    loc = [str(part) for part in error["loc"]]
    name = loc[0] if loc else ""
    where = flag(name) if name in from_flags else settings_cls.variable(name) if name else ""
    ctx = error.get("ctx") or {}
    got = error.get("input")
    if error["type"] == "missing":
        return f"{flag(name)} (or {settings_cls.variable(name)}) is required"
    if error["type"] == "greater_than_equal":
        return f"{where} must be at least {ctx['ge']:g}, got {got}"
    if error["type"] == "greater_than":
        return f"{where} must be above {ctx['gt']:g}, got {got}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


@contextmanager
def _environment(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


def build_settings(
    settings_cls: type[S], flags: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> S:
    """``settings_cls`` from explicit flag values over ``environ`` (default ``os.environ``).

    Raises:
        ValueError: one line naming the unknown variable or the flag/variable with a bad value.
    """
    env = os.environ if environ is None else environ
    unknown = unknown_variables(settings_cls, env)
    if unknown:
        raise ValueError(
            f"unknown variable(s) {', '.join(unknown)}: remove or rename; this program reads "
            f"{', '.join(sorted(settings_cls.own_variables())) or 'no TRENDING_* variable'} "
            "and the platform's (trending.settings.Settings)"
        )
    try:
        with _environment(environ):
            return settings_cls(**flags)
    except ValidationError as exc:
        raise ValueError(
            "; ".join(_describe(settings_cls, error, set(flags)) for error in exc.errors())
        ) from None


def load_settings(
    settings_cls: type[S],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[argparse.Namespace, S]:
    """Parse ``argv`` with ``parser``, then build the settings; errors are usage errors (exit 2).

    Returns:
        The parsed namespace (KServe's flags, when ``parser`` has them) and the settings.
    """
    args = parser.parse_args(None if argv is None else list(argv))
    given = {name: getattr(args, name) for name in settings_cls.model_fields if hasattr(args, name)}
    try:
        settings = build_settings(settings_cls, given, environ)
    except ValueError as exc:
        exit_with(parser.prog, str(exc), code=2)
    return args, settings


def exit_with(prog: str, message: str, code: int = 1) -> NoReturn:
    """End a program at start-up with one line saying what to fix (no traceback).

    Code 1 (a start-up failure) raises ``SystemExit("<prog>: error: <message>")``, which Python
    prints; code 2 (a usage error, as argparse's) prints the line and exits 2.
    """
    line = f"{prog}: error: {message}"
    if code == 1:
        raise SystemExit(line)
    print(line, file=sys.stderr)
    raise SystemExit(code)
