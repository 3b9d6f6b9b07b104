"""Metrics follow the conventions and the README documents every one."""

from __future__ import annotations

from pathlib import Path

from keeper.service.metrics import PREFIX, new_metrics

README = Path(__file__).resolve().parents[2] / "README.md"


def _names() -> list[str]:
    metrics = new_metrics()
    names = []
    for family in metrics.registry.collect():
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        names.append(family.name + suffix)
    return names


def test_every_metric_is_documented_in_the_readme() -> None:
    readme = README.read_text()
    missing = [name for name in _names() if f"`{name}`" not in readme]
    assert missing == []


def test_one_prefix_and_base_units() -> None:
    for name in _names():
        assert name.startswith(f"{PREFIX}_")
        assert not name.endswith(("_milliseconds", "_ms", "_sol"))


def test_each_test_gets_a_fresh_registry() -> None:
    first, second = new_metrics(), new_metrics()
    first.fees_paid_lamports.inc(5)
    assert second.registry.get_sample_value("nosana_keeper_fees_paid_lamports_total") == 0.0
