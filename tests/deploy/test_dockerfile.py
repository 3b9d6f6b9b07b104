"""The Dockerfile, without a Docker engine: its rules read from the parsed file, and its build
step run for real on the same sources (the files its COPY lines take, minus .dockerignore)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_tools import REPO

from keeper.service.settings import MetricsSettings

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
OCI_LABELS = {"title", "description", "version", "revision", "licenses"}


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments dropped, each with its stage."""
    joined, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        if line.strip() or current:
            joined.append(current + line)
        current = ""
    instructions, stage = [], -1
    for line in joined:
        keyword, _, args = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword.upper(), " ".join(args.split())))
    return instructions


@pytest.fixture(scope="module")
def steps() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def _args_default(steps: list[Instruction], name: str) -> str:
    for step in steps:
        match = re.fullmatch(rf"{name}=(\S+)", step.args)
        if step.keyword == "ARG" and match:
            return match.group(1)
    raise AssertionError(f"ARG {name} has no default")


def _stage(steps: list[Instruction], stage: int) -> list[Instruction]:
    return [s for s in steps if s.stage == stage]


def test_parser_reads_continuations_and_stages() -> None:
    parsed = parse("# c\nFROM a AS one\nRUN x \\\n    y\nFROM b\nUSER 1\n")
    assert parsed == [
        Instruction(0, "FROM", "a AS one"),
        Instruction(0, "RUN", "x y"),
        Instruction(1, "FROM", "b"),
        Instruction(1, "USER", "1"),
    ]


def test_two_stages_on_slim_python_311(steps: list[Instruction]) -> None:
    froms = [s for s in steps if s.keyword == "FROM"]
    assert len(froms) == 2
    assert froms[0].args.endswith(" AS build")
    base = _args_default(steps, "PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base
    assert all(f.args.split()[0] == "${PYTHON_IMAGE}" for f in froms)


def test_wheels_are_built_in_stage_one_and_installed_offline_in_stage_two(
    steps: list[Instruction],
) -> None:
    build = " ".join(s.args for s in _stage(steps, 0) if s.keyword == "RUN")
    assert "pip wheel --wheel-dir /wheels ." in build
    runtime = " ".join(s.args for s in _stage(steps, 1) if s.keyword == "RUN")
    assert "from=build,source=/wheels" in runtime
    assert "--no-index --find-links=/wheels nosana-keeper" in runtime
    assert not [s for s in _stage(steps, 1) if s.keyword == "COPY"], "runtime copies nothing"


def test_runtime_is_non_root_with_a_fixed_uid(steps: list[Instruction]) -> None:
    users = [s.args for s in _stage(steps, 1) if s.keyword == "USER"]
    assert users == ["10001:10001"]
    runtime = " ".join(s.args for s in _stage(steps, 1) if s.keyword == "RUN")
    assert "--uid 10001" in runtime
    assert "--gid 10001" in runtime


def test_runtime_writes_nothing(steps: list[Instruction]) -> None:
    env = " ".join(s.args for s in _stage(steps, 1) if s.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert not [s for s in steps if s.keyword == "VOLUME"]


def test_entrypoint_cmd_port_and_no_healthcheck(steps: list[Instruction]) -> None:
    final = {s.keyword: s.args for s in _stage(steps, 1)}
    assert json.loads(final["ENTRYPOINT"]) == ["nosana-keeper"]
    assert json.loads(final["CMD"]) == ["run"]
    assert final["EXPOSE"] == str(MetricsSettings().port)
    assert not [s for s in steps if s.keyword in {"HEALTHCHECK", "ADD"}]


def test_oci_labels(steps: list[Instruction]) -> None:
    labels = " ".join(s.args for s in _stage(steps, 1) if s.keyword == "LABEL")
    found = set(re.findall(r"org\.opencontainers\.image\.([a-z.]+)=", labels))
    assert found >= OCI_LABELS


# --------------------------------------------------------------------------- build context


def _ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a dir covers its files."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern.removeprefix("!").rstrip("/")
        if any(fnmatch.fnmatch(p, bare) for p in prefixes):
            result = not negate
    return result


def _copied_sources(steps: list[Instruction]) -> list[str]:
    sources = []
    for step in _stage(steps, 0):
        if step.keyword == "COPY":
            sources += step.args.split()[:-1]
    return sources


def test_dockerignore_keeps_only_the_build_inputs(steps: list[Instruction]) -> None:
    patterns = _ignore_patterns()
    for source in _copied_sources(steps):
        assert (REPO / source).exists(), source
        assert not ignored(source, patterns), f"{source} is copied but ignored"
    for private in (".venv/bin/python", ".git/config", ".tools/bin/helm", "tests/conftest.py"):
        assert ignored(private, patterns), f"{private} would be sent to the Docker daemon"
    assert ignored("keeper/service/__pycache__/cli.cpython-311.pyc", patterns)
    assert not ignored("keeper/program/idl/nosana_jobs.json", patterns)


def _build_context(steps: list[Instruction], target: Path) -> None:
    """What the build stage's COPY lines put in /src, honouring .dockerignore."""
    patterns = _ignore_patterns()
    for source in _copied_sources(steps):
        origin = REPO / source
        files = [origin] if origin.is_file() else sorted(origin.rglob("*"))
        for file in files:
            relative = file.relative_to(REPO).as_posix()
            if file.is_file() and not ignored(relative, patterns):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, target / relative)


def test_the_build_step_makes_an_installable_wheel(
    steps: list[Instruction], tmp_path: Path
) -> None:
    """The Dockerfile's `pip wheel` on its own sources (the dependencies' wheels come from
    PyPI in the image build; --no-deps keeps this test offline-light), then the install."""
    context, wheels, site = tmp_path / "src", tmp_path / "wheels", tmp_path / "site"
    context.mkdir()
    _build_context(steps, context)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    done = subprocess.run(
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), "."],
        cwd=context,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = wheels.glob("nosana_keeper-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "nosana-keeper = keeper.service.cli:main" in archive.read(entry_points).decode()
    assert "keeper/program/idl/nosana_jobs.json" in names
    assert "keeper/service/metrics.py" in names

    done = subprocess.run(
        [
            *pip,
            "install",
            "--no-deps",
            "--no-index",
            "--find-links",
            str(wheels),
            "--target",
            str(site),
            "nosana-keeper",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    probe = "import keeper.service.metrics as m; print(m.__file__)"
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(site))
