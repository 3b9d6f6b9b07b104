"""config/keeper.yaml lists every setting with its default; the profiles load."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from keeper.service.settings import Settings, load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config"


def _defaults(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def test_keeper_yaml_matches_the_model_exactly() -> None:
    documented = yaml.safe_load((CONFIG / "keeper.yaml").read_text())
    assert documented == _defaults(Settings())


def test_every_setting_has_a_description() -> None:
    def walk(model: type[BaseModel]) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                missing += [f"{name}.{sub}" for sub in walk(annotation)]
            elif not field.description:
                missing.append(name)
        return missing

    assert walk(Settings) == []


@pytest.mark.parametrize("profile", ["mainnet", "devnet", "localnet"])
def test_profiles_load(profile: str, monkeypatch: pytest.MonkeyPatch) -> None:

    for name in list(os.environ):
        if name.startswith("KEEPER_"):
            monkeypatch.delenv(name)
    settings = load_settings(CONFIG / "profiles" / f"{profile}.yaml")
    assert settings.keypair is not None


def test_devnet_profile_has_its_own_program_and_admin() -> None:
    devnet = yaml.safe_load((CONFIG / "profiles" / "devnet.yaml").read_text())
    mainnet = yaml.safe_load((CONFIG / "profiles" / "mainnet.yaml").read_text())
    assert devnet["program_id"] != mainnet["program_id"]
    assert devnet["market_admin"] != mainnet["market_admin"]
