"""The Grafana dashboard: every panel has a query, a unit and a description; every metric it
names is one the keeper exports (read from a fresh keeper.service.metrics registry); every
query filters by the namespace and instance variables; it covers what operators need.
test_prometheus_e2e.py runs every query against a real Prometheus."""

from __future__ import annotations

import re
from collections import Counter

from deploy_tools import (
    DASHBOARD,
    REPO,
    concrete,
    dashboard,
    exported_names,
    panels,
    referenced_metrics,
)

# The ops questions the dashboard must answer, by the metric that answers each.
REQUIRED_METRICS = {
    "nosana_keeper_last_success_timestamp_seconds",  # per task last successful pass
    "nosana_keeper_accounts_waiting",  # accounts waiting
    "nosana_keeper_actions_sent_total",
    "nosana_keeper_actions_confirmed_total",
    "nosana_keeper_actions_failed_total",  # by reason
    "nosana_keeper_reclaimed_lamports_total",  # SOL reclaimed
    "nosana_keeper_fees_paid_lamports_total",
    "nosana_keeper_instructions_per_transaction_sum",  # transaction density
    "nosana_keeper_transaction_density_ratio",
    "nosana_keeper_confirmation_latency_seconds_bucket",
    "nosana_keeper_rpc_requests_total",  # RPC errors by method
    "nosana_keeper_rpc_request_duration_seconds_bucket",  # RPC latency by method
    "nosana_keeper_balance_lamports",
    "nosana_keeper_orphan_jobs",
    "nosana_keeper_backlog_actions",  # the backlog beyond max_actions_per_pass
    "nosana_keeper_backlog_lamports",
    "nosana_keeper_leader",  # which replica sends
    "nosana_keeper_lease_renew_failures_total",
}
_SELECTOR = re.compile(r"\b(nosana_keeper_[a-z0-9_]+|up)(\{[^}]*\})?")


def _exprs() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(dashboard()) for t in p["targets"]]


def test_dashboard_identity_and_variables() -> None:
    board = dashboard()
    assert board["uid"] == "nosana-keeper"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "job", "instance"}
    assert variables["datasource"]["type"] == "datasource"
    for name in ("namespace", "job", "instance"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        assert "nosana_keeper_" in variables[name]["query"]["query"]


def test_every_panel_has_a_query_a_unit_and_a_description() -> None:
    shown = list(panels(dashboard()))
    assert len(shown) >= 25
    for panel in shown:
        assert panel["targets"], f"{panel['title']}: no query"
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']}: no unit"
        assert panel.get("description"), f"{panel['title']}: no description"
        assert panel["datasource"]["uid"] == "${datasource}"
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    board = dashboard()
    ids = Counter(p["id"] for p in board["panels"])
    assert [i for i, n in ids.items() if n > 1] == []
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area


def test_every_metric_in_the_dashboard_is_exported_by_the_keeper() -> None:
    exported = exported_names()
    unknown = {
        (title, name)
        for title, expr in _exprs()
        for name in referenced_metrics(expr)
        if name not in exported
    }
    assert unknown == set()


def test_the_exported_name_list_can_tell_a_typo() -> None:
    assert "nosana_keeper_balance_lamports" in exported_names()
    assert "nosana_keeper_balance_lamport" not in exported_names()
    assert "nosana_keeper_scans_total" in exported_names()
    assert "nosana_keeper_rpc_request_duration_seconds_bucket" in exported_names()


def test_the_dashboard_covers_what_operators_need() -> None:
    used = {name for _, expr in _exprs() for name in referenced_metrics(expr)}
    assert REQUIRED_METRICS - used == set()


def test_every_selector_filters_by_namespace_and_instance() -> None:
    for title, expr in _exprs():
        for match in _SELECTOR.finditer(expr):
            matchers = match.group(2) or ""
            assert 'namespace=~"$namespace"' in matchers, f"{title}: {match.group(0)}"
            assert 'instance=~"$instance"' in matchers, f"{title}: {match.group(0)}"


def test_variables_are_all_substituted_for_evaluation() -> None:
    for _, expr in _exprs():
        assert "$" not in concrete(expr)


def test_monitoring_copy_is_the_chart_dashboard() -> None:
    copy = REPO / "monitoring" / "grafana" / "nosana-keeper.json"
    assert copy.resolve() == DASHBOARD.resolve() or copy.read_text() == DASHBOARD.read_text()
