"""The alert rules, checked by the real promtool: syntax (`check rules`), behaviour (`test rules`,
a firing and a silent case per alert), and that the unit tests notice a changed threshold.
The static rules file is the chart's PrometheusRule rendered with default values."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_tools import (
    CHART,
    EXAMPLES,
    RULE_TESTS,
    RULES,
    helm_args,
    load_yaml,
    one,
    render,
    rule_alerts,
    run,
    tool,
)

HEADER = """\
# nosana-keeper alert rules for a Prometheus without the Operator (rule_files:).
# Generated: the chart's PrometheusRule spec rendered with default values. Do not edit by hand:
# change helm/nosana-keeper/templates/_rules.tpl, then run
#   UPDATE_RULES=1 .venv/bin/pytest tests/deploy/test_rules.py
# Unit tests: nosana-keeper.rules.test.yaml (promtool test rules).
"""


@pytest.fixture(scope="session")
def promtool() -> Path:
    return tool("promtool")


@pytest.fixture(scope="session")
def helm() -> Path:
    return tool("helm")


def _rendered_rules_text(helm: Path, sets: list[str] | None = None) -> str:
    """The PrometheusRule's spec as rule-file text (block scalars kept, two spaces dedented)."""
    args: list[str | Path] = [
        helm,
        "template",
        "nosana-keeper",
        CHART,
        "--show-only",
        "templates/prometheusrule.yaml",
    ]
    out = run([*args, *helm_args(sets=["prometheusRule.enabled=true", *(sets or [])])])
    spec = out.split("\nspec:\n", 1)[1]
    return "".join(line.removeprefix("  ") for line in spec.splitlines(keepends=True))


def test_rules_pass_promtool_check(promtool: Path) -> None:
    out = run([promtool, "check", "rules", RULES])
    assert "SUCCESS" in out


def test_rules_pass_their_unit_tests(promtool: Path) -> None:
    out = run([promtool, "test", "rules", RULE_TESTS])
    assert "SUCCESS" in out


def test_static_rules_file_is_the_charts_rendering(helm: Path) -> None:
    rendered = _rendered_rules_text(helm)
    if os.environ.get("UPDATE_RULES") == "1":
        RULES.write_text(HEADER + rendered)
    assert load_yaml(RULES) == yaml.safe_load(rendered), (
        "monitoring/prometheus/nosana-keeper.rules.yaml differs from the chart: "
        "UPDATE_RULES=1 .venv/bin/pytest tests/deploy/test_rules.py"
    )


def _unit_tests_by_alert() -> dict[str, list[dict[str, Any]]]:
    cases: dict[str, list[dict[str, Any]]] = {}
    for test in load_yaml(RULE_TESTS)["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(case)
    return cases


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    cases = _unit_tests_by_alert()
    for alert in rule_alerts(load_yaml(RULES)):
        name = alert["alert"]
        assert any(c.get("exp_alerts") for c in cases.get(name, [])), f"{name} never fires"
        assert any(not c.get("exp_alerts") for c in cases.get(name, [])), f"{name}: no silent case"


def test_every_alert_is_documented() -> None:
    readme = (CHART / "README.md").read_text()
    for alert in rule_alerts(load_yaml(RULES)):
        assert f"\n### {alert['alert']}\n" in readme, f"no runbook entry for {alert['alert']}"
        assert alert["labels"]["severity"] in {"critical", "warning"}
        assert alert["annotations"]["summary"]
        assert alert["annotations"]["description"]


@pytest.mark.parametrize(
    "change",
    [
        "prometheusRule.failureRatio.threshold=0.6",
        "prometheusRule.balanceLow.thresholdLamports=10000000",
        "prometheusRule.taskStalled.missedPasses=10",
        "prometheusRule.backlogGrowing.minAccounts=1000",
        "prometheusRule.rpcErrors.threshold=0.5",
        "prometheusRule.keeperDown.for=15m",
        "prometheusRule.chainClockAhead.for=15m",
        "prometheusRule.rpcEndpointDown.for=30m",
        "prometheusRule.noLeader.for=10m",
        "prometheusRule.manyLeaders.for=5m",
        "prometheusRule.liveFeedDown.for=30m",
    ],
)
def test_unit_tests_notice_a_changed_threshold(
    helm: Path, promtool: Path, tmp_path: Path, change: str
) -> None:
    (tmp_path / RULES.name).write_text(_rendered_rules_text(helm, [change]))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    out = run([promtool, "test", "rules", tmp_path / RULE_TESTS.name], check=False)
    assert "FAILED" in out, f"the unit tests still pass with {change}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_rules_rendered_for_each_example_pass_promtool(
    helm: Path, promtool: Path, tmp_path: Path, example: Path
) -> None:
    manifests = render(helm, [example], sets=["prometheusRule.enabled=true"])
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(one(manifests, "PrometheusRule")["spec"]))
    assert "SUCCESS" in run([promtool, "check", "rules", rules_file])
