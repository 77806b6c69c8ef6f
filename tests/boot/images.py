"""The project's images as their Dockerfiles build them, without a container engine.

``docker/*.Dockerfile`` is read instruction by instruction. An image is then laid out as a small
directory tree that the boot test binds into a bubblewrap sandbox:

- ``/opt/venv``: the image's virtualenv. The packages come from this checkout's ``.venv`` (the
  same lock), except the project itself, which the build stage installs from the package folders
  it COPYs; those folders are copied in (not linked), so a program that resolves its own path
  finds only what the image has. Console scripts are rewritten to the image's interpreter.
- every path the final stage COPYs from the build context (e.g. ``feature_repo`` to
  ``/app/feature_repo``), and the WORKDIR.
- the final stage's ENV, with ``$PATH`` expanded against the base image's PATH.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
VENV = REPO_ROOT / ".venv"
# The python:3.11-slim base image's PATH (what ``$PATH`` means in the final stage's ENV).
BASE_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_VENV = "/opt/venv"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its (continuation-joined) arguments."""

    line: int
    keyword: str
    args: str


def parse(path: Path) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if not buffer:
            start = number
        buffer += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, args = buffer.strip().partition(" ")
            instructions.append(Instruction(start, keyword.upper(), args.strip()))
            buffer = ""
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions split by FROM."""
    out: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            out.append([])
        out[-1].append(instruction)
    return out


@dataclass(frozen=True)
class Copy:
    """A COPY from the build context (``--from`` copies are not context copies)."""

    sources: tuple[str, ...]
    dest: str
    from_stage: str | None


def copies(stage: list[Instruction]) -> list[Copy]:
    """The COPY instructions of one stage."""
    out = []
    for instruction in stage:
        if instruction.keyword != "COPY":
            continue
        words = shlex.split(instruction.args)
        options = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        from_stage = next((o.split("=", 1)[1] for o in options if o.startswith("--from=")), None)
        out.append(Copy(tuple(paths[:-1]), paths[-1], from_stage))
    return out


def parse_env(args: str, env: dict[str, str]) -> dict[str, str]:
    """``ENV A=1 B=$A`` on top of ``env`` (``$VAR``/``${VAR}`` expanded as Docker does)."""
    out = dict(env)
    for word in shlex.split(args):
        name, _, value = word.partition("=")
        out[name] = re.sub(
            r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: out.get(m.group(1), ""), value
        )
    return out


@dataclass
class Image:
    """What one Dockerfile builds, as far as a program running in it can tell."""

    dockerfile: Path
    workdir: str = "/"
    user: str = "0"
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    build_copies: list[Copy] = field(default_factory=list)
    runtime_copies: list[Copy] = field(default_factory=list)

    @classmethod
    def read(cls, dockerfile: Path) -> Image:
        """Read a Dockerfile's build stage and final stage."""
        parsed = stages(parse(dockerfile))
        image = cls(dockerfile, build_copies=copies(parsed[0]), runtime_copies=[])
        env = {"PATH": BASE_IMAGE_PATH}
        for instruction in parsed[-1]:
            if instruction.keyword == "ENV":
                env = parse_env(instruction.args, env)
            elif instruction.keyword == "WORKDIR":
                image.workdir = instruction.args
            elif instruction.keyword == "USER":
                image.user = instruction.args
            elif instruction.keyword in ("CMD", "ENTRYPOINT"):
                value = instruction.args
                words = (
                    __import__("json").loads(value)
                    if value.startswith("[")
                    else ["sh", "-c", value]
                )
                setattr(image, instruction.keyword.lower(), words)
        image.env = env
        image.runtime_copies = [c for c in copies(parsed[-1]) if c.from_stage is None]
        return image

    def installed_packages(self) -> list[str]:
        """Top-level project packages ``pip install .`` puts into the image's venv.

        A package is installed when pyproject's package list includes it and the build stage
        COPYs its folder (setuptools finds only what is in the build folder).
        """
        pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
        patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
        copied = {Path(s).parts[0] for c in self.build_copies for s in c.sources}
        return sorted(name for name in copied if any(fnmatch.fnmatch(name, p) for p in patterns))

    def context_paths(self) -> dict[str, str]:
        """Repository path -> absolute path in the final image, for the final stage's COPYs."""
        out: dict[str, str] = {}
        for copy in self.runtime_copies:
            for source in copy.sources:
                dest = copy.dest
                if not dest.startswith("/"):
                    dest = f"{self.workdir.rstrip('/')}/{dest}"
                if dest.endswith("/") or len(copy.sources) > 1:
                    dest = f"{dest.rstrip('/')}/{Path(source).name}"
                out[source.rstrip("/")] = dest
        return out


def project_scripts() -> dict[str, str]:
    """The project's console scripts: name -> ``module:attr``."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return dict(pyproject["project"].get("scripts", {}))


_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def build_rootfs(image: Image, out: Path) -> Path:
    """Lay the image out under ``out`` (``out/opt/venv``, ``out/app/...``); returns ``out``."""
    venv = out / IMAGE_VENV.lstrip("/")
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    site.mkdir(parents=True)
    source_site = VENV / site.relative_to(venv)
    project = set(image.installed_packages())
    for entry in source_site.iterdir():
        # The checkout's editable install would make every package of the repository importable.
        if entry.name.startswith("__editable__") or entry.name in project:
            continue
        (site / entry.name).symlink_to(entry)
    for package in project:
        shutil.copytree(REPO_ROOT / package, site / package, ignore=_IGNORE)
    shutil.copy2(VENV / "pyvenv.cfg", venv / "pyvenv.cfg")
    bin_dir = venv / "bin"
    bin_dir.mkdir()
    for entry in (VENV / "bin").iterdir():
        target = bin_dir / entry.name
        if entry.is_symlink():  # python, python3, python3.11 -> the base interpreter
            target.symlink_to(os.readlink(entry))
            continue
        if not entry.is_file():
            continue
        head = entry.read_bytes()[:200]
        if head.startswith(b"#!") and str(VENV).encode() in head.split(b"\n", 1)[0]:
            text = entry.read_text().split("\n", 1)
            target.write_text(f"#!{IMAGE_VENV}/bin/python\n{text[1] if len(text) > 1 else ''}")
            target.chmod(0o755)
    for source, dest in image.context_paths().items():
        target = out / dest.lstrip("/")
        origin = REPO_ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=_IGNORE)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
    (out / image.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return out


def dockerfile_for(image_ref: str) -> Path | None:
    """The project Dockerfile that builds an image reference (via skaffold's artifacts), or None."""
    import yaml

    config = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())
    name = image_ref.split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1]
    for artifact in config["build"]["artifacts"]:
        if artifact["image"] == name:
            return REPO_ROOT / artifact["docker"]["dockerfile"]
    return None
