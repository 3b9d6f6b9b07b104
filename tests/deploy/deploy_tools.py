"""What the deployment tests share: where things are, the real tools, helm rendering, queries.

The tools come from scripts/install-tools.sh (into .tools/bin). A missing tool skips its test
with the command to run, except under CI=true, where it fails: CI must prove the real thing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from keeper.service.metrics import new_metrics

REPO = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO / ".tools" / "bin"
CHART = REPO / "helm" / "nosana-keeper"
EXAMPLES = sorted((CHART / "ci").glob("*-values.yaml"))
DASHBOARD = CHART / "dashboards" / "nosana-keeper.json"
RULES = REPO / "monitoring" / "prometheus" / "nosana-keeper.rules.yaml"
RULE_TESTS = REPO / "monitoring" / "prometheus" / "nosana-keeper.rules.test.yaml"
KUBERNETES_VERSION = "1.33.0"
INSTALL_HINT = "run scripts/install-tools.sh"


def missing(reason: str) -> None:
    """Fail under CI (it must test the real thing), skip with the reason elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} ({INSTALL_HINT}); CI=true requires it")
    pytest.skip(f"{reason}: {INSTALL_HINT}")


def tool(name: str) -> Path:
    """A real binary: .tools/bin first, then PATH."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed")
    return Path(str(found))


def run(args: Sequence[str | Path], *, check: bool = True, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, cwd=cwd, timeout=120
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout + done.stderr if not check else done.stdout


def helm_args(values: Sequence[Path] = (), sets: Sequence[str] = ()) -> list[str]:
    args: list[str] = []
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


def render(
    helm: Path,
    values: Sequence[Path] = (),
    sets: Sequence[str] = (),
    *,
    show_only: str | None = None,
    release: str = "keeper",
    namespace: str = "nosana",
) -> list[dict[str, Any]]:
    """`helm template` -> the manifests, parsed."""
    args: list[str | Path] = [helm, "template", release, CHART, "--namespace", namespace]
    args += helm_args(values, sets)
    if show_only:
        args += ["--show-only", show_only]
    return [doc for doc in yaml.safe_load_all(run(args)) if doc]


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [m for m in by_kind(manifests, kind) if m["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {len(found)}"
    return found[0]


# --------------------------------------------------------------------------- dashboard


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows are layout), including panels inside collapsed rows."""
    for panel in board["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


# Grafana's variables, as the e2e test fills them: every namespace and instance, the e2e job.
PANEL_VARIABLES = {
    "$__rate_interval": "30s",
    "$__range": "5m",
    "$namespace": ".*",
    "$instance": ".*",
    "$job": "nosana-keeper",
}


def concrete(expr: str) -> str:
    """A panel query with Grafana's variables replaced, as Grafana would send it."""
    for name in sorted(PANEL_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, PANEL_VARIABLES[name])
    return expr


# --------------------------------------------------------------------------- metrics

_METRIC_NAME = re.compile(r"\bnosana_keeper_[a-z0-9_]+\b")


def referenced_metrics(expr: str) -> set[str]:
    return set(_METRIC_NAME.findall(expr))


def exported_names() -> set[str]:
    """Every series name a fresh keeper registry can export (histogram parts, _total, _info)."""
    names: set[str] = set()
    for family in new_metrics().registry.collect():
        base = family.name
        suffixes = {
            "counter": ["_total", "_created"],
            "histogram": ["_bucket", "_count", "_sum", "_created"],
            "info": ["_info"],
        }.get(family.type, [""])
        names.update(base + suffix for suffix in suffixes)
    return names


def rule_alerts(rules_doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rules_doc["groups"] for rule in group["rules"] if "alert" in rule]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
