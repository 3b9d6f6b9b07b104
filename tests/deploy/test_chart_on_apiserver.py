"""The chart installed by the real helm onto a real kube-apiserver (v1.20.2, TLS, token
authentication, RBAC; tests/kube_api.py) with two replicas, and the RBAC it grants checked by
the real `kubectl auth can-i` as the chart's ServiceAccount: exactly get, create, update and
patch on leases in the release namespace, nothing else."""

from __future__ import annotations

import json

import pytest

from tests.conftest import InstalledChart

LEASE_VERBS = ["get", "create", "update", "patch"]


def _can_i(chart: InstalledChart, *args: str) -> bool:
    user = f"system:serviceaccount:{chart.namespace}:{chart.service_account}"
    out = chart.api.kubectl("auth", "can-i", *args, f"--as={user}", check=False)
    answer = out.strip().splitlines()[0] if out.strip() else ""
    assert answer in {"yes", "no"}, out
    return answer == "yes"


def test_install_with_two_replicas_creates_the_election_objects(
    installed_chart: InstalledChart,
) -> None:
    api, ns, name = installed_chart.api, installed_chart.namespace, installed_chart.service_account
    deployment = json.loads(api.kubectl("-n", ns, "get", "deployment", name, "-o", "json"))
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert pod["serviceAccountName"] == name
    # Kubernetes 1.20 has no policy/v1 PodDisruptionBudget: the chart chose v1beta1.
    pdb = json.loads(
        api.kubectl("-n", ns, "get", "poddisruptionbudgets.v1beta1.policy", name, "-o", "json")
    )
    assert pdb["spec"]["minAvailable"] == 1
    role = json.loads(api.kubectl("-n", ns, "get", "role", name, "-o", "json"))
    assert role["rules"][0]["verbs"] == LEASE_VERBS


@pytest.mark.parametrize("verb", LEASE_VERBS)
def test_the_service_account_may_use_its_leases(installed_chart: InstalledChart, verb: str) -> None:
    assert _can_i(installed_chart, verb, "leases.coordination.k8s.io", "-n", "nosana")


@pytest.mark.parametrize(
    "args",
    [
        ("delete", "leases.coordination.k8s.io", "-n", "nosana"),
        ("list", "leases.coordination.k8s.io", "-n", "nosana"),
        ("watch", "leases.coordination.k8s.io", "-n", "nosana"),
        ("get", "leases.coordination.k8s.io", "-n", "default"),
        ("get", "secrets", "-n", "nosana"),
        ("get", "configmaps", "-n", "nosana"),
        ("create", "pods", "-n", "nosana"),
        ("update", "deployments.apps", "-n", "nosana"),
        ("get", "nodes"),
    ],
    ids=lambda args: "-".join(args[:2] + args[3:]),
)
def test_the_service_account_may_do_nothing_else(
    installed_chart: InstalledChart, args: tuple[str, ...]
) -> None:
    assert not _can_i(installed_chart, *args)


def test_the_full_list_of_its_permissions_is_the_lease_verbs(
    installed_chart: InstalledChart,
) -> None:
    """`can-i --list`: besides what every authenticated user may (discovery, self reviews)."""
    chart = installed_chart
    user = f"system:serviceaccount:{chart.namespace}:{chart.service_account}"
    out = chart.api.kubectl("auth", "can-i", "--list", "-n", chart.namespace, f"--as={user}")
    granted: dict[str, str] = {}
    for line in out.splitlines()[1:]:
        resource, rest = line.split(maxsplit=1) if line.strip() else ("", "")
        if resource and not resource.startswith("["):
            granted[resource] = rest
    everyone = {
        "selfsubjectaccessreviews.authorization.k8s.io",
        "selfsubjectrulesreviews.authorization.k8s.io",
    }
    assert set(granted) - everyone == {"leases.coordination.k8s.io"}, out
    assert granted["leases.coordination.k8s.io"].split()[-4:] == [
        "[get",
        "create",
        "update",
        "patch]",
    ], out
