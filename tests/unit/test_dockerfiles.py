"""The Dockerfiles' invariants, checked by reading them (no Docker engine runs here).

Pinned bases, multi-stage, dependencies from the lock before the source, a fixed non-root UID,
the PyTorch CPU index that the lock's ``torch==…+cpu`` needs, or the CUDA build TORCH_VARIANT
selects; every repository path a program reads is in the image that runs it. The Dockerfile model
(tests/boot/images.py) is the one the boot test lays the images out with.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "boot"))
from images import Image, parse, project_scripts, stages

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO_ROOT / "docker").glob("*.Dockerfile"))


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


# ---------------------------------------------------------------- what the programs read


def _top_level_repo_paths() -> set[str]:
    """Repository entries a program could read by relative path (not the Python packages)."""
    packages = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")}
    ignored = {".git", ".venv", "tests", "docs", "build", ".trending", ".pytest_cache"}
    return {
        p.name
        for p in REPO_ROOT.iterdir()
        if p.name not in packages | ignored and not p.name.endswith(".egg-info")
    }


# The CLI package is the local runtime too (demo, local Prometheus): in an image only its
# `trending pipeline` commands run (the chart's pipeline Job), so only that module is scanned.
CLI_MODULES_RUN_IN_IMAGES = ("cli/__init__.py", "cli/pipeline.py")


def program_sources(packages: list[str]) -> list[Path]:
    """The source files of what an image's programs run."""
    out: list[Path] = []
    for package in packages:
        if package == "cli":
            out += [REPO_ROOT / m for m in CLI_MODULES_RUN_IN_IMAGES]
        else:
            out += sorted((REPO_ROOT / package).rglob("*.py"))
    return out


def repository_paths_read(packages: list[str]) -> dict[str, set[str]]:
    """Repository path -> the program source files in ``packages`` that name it as a path.

    A string constant that is a path (no spaces) whose first part is a top-level repository
    entry counts, e.g. the settings default ``Path("feature_repo")``; an error message that
    mentions "see policies/canary.yaml" does not.
    """
    entries = _top_level_repo_paths()
    found: dict[str, set[str]] = {}
    for source in program_sources(packages):
        for node in ast.walk(ast.parse(source.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            match = re.fullmatch(r"([\w.-]+)(/[\w./-]*)?", node.value)
            if match and match.group(1) in entries:
                found.setdefault(match.group(1), set()).add(str(source.relative_to(REPO_ROOT)))
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_repository_path_a_program_reads_is_in_its_image(dockerfile: Path) -> None:
    image = Image.read(dockerfile)
    shipped = image.context_paths()
    reads = repository_paths_read(image.installed_packages())
    assert reads, "the scan found no repository path at all (feature_repo at least)"
    missing = {path: sorted(files) for path, files in reads.items() if path not in shipped}
    assert not missing, f"{dockerfile.name}: programs read {missing} but the image lacks them"
    # Relative reads resolve against the WORKDIR, or an ENV variable points at the copy.
    for path in reads:
        assert shipped[path] == f"{image.workdir}/{path}" or shipped[path] in image.env.values()


def test_the_scan_sees_a_path_the_code_reads(tmp_path: Path) -> None:
    reads = repository_paths_read(["trending"])
    assert "trending/settings.py" in reads["feature_repo"]
    assert "policies" not in reads  # named only inside error messages


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_console_scripts_have_their_package_in_the_image(dockerfile: Path) -> None:
    installed = Image.read(dockerfile).installed_packages()
    for script, target in project_scripts().items():
        package = target.split(":")[0].split(".")[0]
        assert package in installed, f"{dockerfile.name}: `{script}` runs {target}, not installed"


# ---------------------------------------------------------------- CPU or CUDA torch


def _lock_install_script(dockerfile: Path) -> str:
    build = stages(parse(dockerfile))[0]
    return next(i.args for i in build if i.keyword == "RUN" and "requirements.lock" in i.args)


@pytest.mark.tools  # runs the install step with a fake pip
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
@pytest.mark.parametrize("variant", ["cpu", "cu128"])
def test_torch_variant_selects_the_torch_build(
    dockerfile: Path, variant: str, tmp_path: Path
) -> None:
    """The lock install as the build runs it, with a pip that records what it was asked."""
    build = stages(parse(dockerfile))[0]
    args = [i.args for i in build if i.keyword == "ARG"]
    assert "TORCH_VARIANT=cpu" in args, "ARG TORCH_VARIANT=cpu (default CPU build) expected"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    pip = bin_dir / "pip"
    pip.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\nfor a; do case "$prev" in -r) cat "$a" >> {calls}.r;; '
        'esac; prev="$a"; done\n'
    )
    pip.chmod(0o755)
    shutil.copy(REPO_ROOT / "requirements.lock", tmp_path / "requirements.lock")
    subprocess.run(
        ["sh", "-c", _lock_install_script(dockerfile)],
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "TORCH_VARIANT": variant},
        check=True,
    )
    lock = (REPO_ROOT / "requirements.lock").read_text()
    torch_pin = re.search(r"^torch==([\d.]+)\+cpu$", lock, re.M)
    assert torch_pin
    installed = (tmp_path / "calls.r").read_text()
    commands = (tmp_path / "calls").read_text().splitlines()
    if variant == "cpu":
        assert installed == lock
        assert all("--no-deps" in c for c in commands)
    else:
        assert "torch==" not in installed
        assert installed.count("\n") == lock.count("\n") - 1
        assert commands[-1] == (
            f"install --index-url https://download.pytorch.org/whl/{variant} "
            f"torch=={torch_pin.group(1)}+{variant}"
        )


def test_skaffold_gpu_profile_builds_the_cuda_torch() -> None:
    config = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())
    gpu = next(p for p in config["profiles"] if p["name"] == "gpu")
    build_args = {
        int(patch["path"].split("/")[3]): patch["value"]
        for patch in gpu["patches"]
        if patch["path"].startswith("/build/artifacts/") and patch["path"].endswith("/buildArgs")
    }
    artifacts = config["build"]["artifacts"]
    assert sorted(build_args) == list(range(len(artifacts))), "every image gets the CUDA build"
    for values in build_args.values():
        assert re.fullmatch(r"cu\d{3}", values["TORCH_VARIANT"])
    for artifact in artifacts:  # the default build stays CPU
        assert "TORCH_VARIANT" not in artifact["docker"].get("buildArgs", {})
