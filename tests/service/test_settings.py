"""Settings: precedence defaults < YAML < environment < CLI, and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from keeper.errors import ConfigError
from keeper.program.ids import MAINNET
from keeper.service.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:

    for name in list(os.environ):
        if name.startswith("KEEPER_"):
            monkeypatch.delenv(name)


def test_defaults_are_mainnet() -> None:
    settings = load_settings()
    assert settings.program_id == str(MAINNET.jobs_program)
    assert settings.market_admin == str(MAINNET.market_admin)
    assert settings.claim.enabled is False


def test_yaml_overrides_defaults(tmp_path: Path) -> None:
    config = tmp_path / "k.yaml"
    config.write_text("quit:\n  grace_seconds: 7\nrpc:\n  url: http://yaml\n")
    settings = load_settings(config)
    assert settings.quit.grace_seconds == 7
    assert settings.rpc.url == "http://yaml"
    assert settings.rpc.timeout_seconds == 30.0  # untouched sibling keeps its default


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "k.yaml"
    config.write_text("quit:\n  grace_seconds: 7\nrpc:\n  url: http://yaml\n")
    monkeypatch.setenv("KEEPER_QUIT_GRACE_SECONDS", "9")
    monkeypatch.setenv("KEEPER_RPC_URL", "http://env")
    monkeypatch.setenv("KEEPER_CLAIM_ENABLED", "true")
    monkeypatch.setenv("KEEPER_METRICS_PORT", "9999")
    settings = load_settings(config)
    assert settings.quit.grace_seconds == 9
    assert settings.rpc.url == "http://env"
    assert settings.claim.enabled is True
    assert settings.metrics.port == 9999


def test_cli_overrides_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPER_RPC_URL", "http://env")
    settings = load_settings(overrides={"rpc": {"url": "http://cli"}})
    assert settings.rpc.url == "http://cli"


def test_contract_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = "XXXxddiNnmoD2h2LbQYaL76Swi21MaQbtBbRynAdQL8"
    nft = "So11111111111111111111111111111111111111112"
    monkeypatch.setenv("KEEPER_KEYPAIR", "/keys/k.json")
    monkeypatch.setenv("KEEPER_PROGRAM_ID", "nosJTmGQxvwXy23vng5UjkTbfv91Bzf9jEuro78dAGR")
    monkeypatch.setenv("KEEPER_MARKET_ADMIN", admin)
    monkeypatch.setenv("KEEPER_CLAIM_NFT", nft)
    settings = load_settings()
    assert settings.keypair == Path("/keys/k.json")
    assert settings.market_admin == admin
    assert settings.claim.nft == nft


@pytest.mark.parametrize(
    ("env", "value", "names"),
    [
        ("KEEPER_PROGRAM_ID", "not-a-key", "program_id"),
        ("KEEPER_METRICS_PORT", "70000", "metrics.port"),
        ("KEEPER_FEES_PERCENTILE", "101", "fees.percentile"),
        ("KEEPER_CLAIM_NFT", "zz", "claim.nft"),
    ],
)
def test_bad_setting_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, names: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert names in str(caught.value)
    assert "KEEPER_" in caught.value.hint


def test_unknown_yaml_key_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "k.yaml"
    config.write_text("rpc:\n  urll: http://typo\n")
    with pytest.raises(ConfigError, match="urll"):
        load_settings(config)


def test_missing_config_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "nope.yaml")
    assert "--config" in caught.value.hint


def test_malformed_yaml(tmp_path: Path) -> None:
    config = tmp_path / "k.yaml"
    config.write_text("rpc: [unclosed\n")
    with pytest.raises(ConfigError):
        load_settings(config)
