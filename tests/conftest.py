"""Fixtures shared across test folders: the real Kubernetes API server (session-scoped, so
it starts once) and the chart installed onto it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.kube_api import REPO, KubeApi, binary, running_api_server

CHART_NAMESPACE = "nosana"
CHART_RELEASE = "keeper"
CHART_FULLNAME = "keeper-nosana-keeper"  # <release>-<chart>


@pytest.fixture(scope="session")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApi]:
    with running_api_server(
        tmp_path_factory.mktemp("kube-api"), service_accounts=[(CHART_NAMESPACE, CHART_FULLNAME)]
    ) as api:
        yield api


@dataclass(frozen=True)
class InstalledChart:
    api: KubeApi
    namespace: str
    release: str
    service_account: str
    install_output: str


@pytest.fixture(scope="session")
def installed_chart(kube_api: KubeApi) -> InstalledChart:
    """`helm install` of the chart with two replicas (leader election is on by default)."""
    import subprocess  # noqa: PLC0415 - only this fixture runs helm

    helm = binary("helm")
    done = subprocess.run(
        [
            str(helm),
            "install",
            CHART_RELEASE,
            str(REPO / "helm" / "nosana-keeper"),
            "--namespace",
            CHART_NAMESPACE,
            "--create-namespace",
            "--set",
            "replicaCount=2",
            "--kubeconfig",
            str(kube_api.admin_kubeconfig),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        pytest.fail(f"helm install failed:\n{done.stdout}{done.stderr}")
    return InstalledChart(
        kube_api, CHART_NAMESPACE, CHART_RELEASE, CHART_FULLNAME, done.stdout + done.stderr
    )
