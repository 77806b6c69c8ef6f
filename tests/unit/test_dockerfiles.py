"""The Dockerfiles' invariants, checked by reading them (no Docker engine runs here).

Pinned bases, multi-stage, dependencies from the lock before the source, a fixed non-root UID,
and the PyTorch CPU index that the lock's ``torch==…+cpu`` needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO_ROOT / "docker").glob("*.Dockerfile"))


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


def test_both_images_have_a_dockerfile() -> None:
    assert {p.name for p in DOCKERFILES} == {"component.Dockerfile", "serving.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_base_image_is_pinned_by_digest(dockerfile: Path) -> None:
    froms = [i for i in parse(dockerfile) if i.keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    for instruction in froms:
        image = instruction.args.split()[0]
        if image.startswith("--platform"):
            image = instruction.args.split()[1]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), (
            f"line {instruction.line}: {image} is not pinned by digest"
        )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_runs_as_a_fixed_non_root_uid(dockerfile: Path) -> None:
    final = stages(parse(dockerfile))[-1]
    users = [i for i in final if i.keyword == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    uid, _, gid = users[-1].args.partition(":")
    assert uid.isdigit() and int(uid) >= 10000, f"USER {users[-1].args}: numeric UID >= 10000"
    assert not gid or (gid.isdigit() and int(gid) > 0)
    after_user = final[final.index(users[-1]) + 1 :]
    assert all(i.keyword != "USER" for i in after_user)
    # The chart's podSecurityContext runs as the same UID.
    assert f"runAsUser: {uid}" in (REPO_ROOT / "charts/trending/values.yaml").read_text()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_lock_is_installed_before_the_source_is_copied(dockerfile: Path) -> None:
    build = stages(parse(dockerfile))[0]
    keywords = [(i.keyword, i.args) for i in build]
    copy_lock = next(
        n for n, (k, a) in enumerate(keywords) if k == "COPY" and "requirements.lock" in a
    )
    install_lock = next(
        n for n, (k, a) in enumerate(keywords) if k == "RUN" and "-r requirements.lock" in a
    )
    first_source = next(
        n
        for n, (k, a) in enumerate(keywords)
        if k == "COPY" and re.search(r"\b(trending|serving)\b", a)
    )
    install_project = next(
        n for n, (k, a) in enumerate(keywords) if k == "RUN" and "install --no-deps ." in a
    )
    assert copy_lock < install_lock < first_source < install_project
    lock_install = keywords[install_lock][1]
    assert "--no-deps" in lock_install, "the lock is a complete resolve: install it as is"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lock_install
    assert "-U" not in lock_install.split() and "--upgrade" not in lock_install


def test_lock_pins_the_cpu_torch_build_that_needs_the_extra_index() -> None:
    lock = (REPO_ROOT / "requirements.lock").read_text().splitlines()
    assert any(re.fullmatch(r"torch==[\d.]+\+cpu", line.strip()) for line in lock)
    assert all("==" in line for line in lock if line.strip() and not line.startswith("#"))


def test_serving_image_ships_the_feast_repository_the_chart_points_at() -> None:
    serving = parse(REPO_ROOT / "docker" / "serving.Dockerfile")
    assert any(
        i.keyword == "COPY" and i.args.endswith("feature_repo /app/feature_repo") for i in serving
    )
    chart_helpers = (REPO_ROOT / "charts/trending/templates/_helpers.tpl").read_text()
    assert "TRENDING_FEATURE_REPO: /app/feature_repo" in chart_helpers


def test_parser_sees_what_a_bad_dockerfile_does(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text(
        "FROM python:3.11\nCOPY . .\nRUN pip install -U -r requirements.lock \\\n  torch\n"
    )
    instructions = parse(bad)
    assert [i.keyword for i in instructions] == ["FROM", "COPY", "RUN"]
    assert instructions[2].args.endswith("torch")
    assert not re.search(r"@sha256:", instructions[0].args)


def test_skaffold_builds_both_dockerfiles_and_hands_them_to_the_chart() -> None:
    config = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())
    artifacts = {a["image"]: a["docker"]["dockerfile"] for a in config["build"]["artifacts"]}
    assert artifacts == {
        "trending-serving": "docker/serving.Dockerfile",
        "trending-components": "docker/component.Dockerfile",
    }
    (release,) = config["deploy"]["helm"]["releases"]
    assert (REPO_ROOT / release["chartPath"] / "Chart.yaml").is_file()
    templates = release["setValueTemplates"]
    for image, key in (("trending_serving", "serving"), ("trending_components", "component")):
        assert templates[f"images.{key}.repository"] == f"{{{{.IMAGE_REPO_{image}}}}}"
        assert templates[f"images.{key}.tag"] == f"{{{{.IMAGE_TAG_{image}}}}}"
    profiles = {p["name"]: p for p in config["profiles"]}
    assert {"kind", "gpu"} <= set(profiles)
    kind_values = profiles["kind"]["patches"][0]["value"]
    assert all((REPO_ROOT / path).is_file() for path in kind_values + release["valuesFiles"])
    assert profiles["kind"]["activation"] == [{"kubeContext": "kind-trending"}]
    assert "name: trending" in (REPO_ROOT / "kind-config.yaml").read_text()
