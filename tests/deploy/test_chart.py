"""The Helm chart, checked with the real tools: helm (v4) lints and renders it for the default
values and every documented example, kubernetes-validate checks every manifest against the
Kubernetes 1.33 OpenAPI schemas offline, the rendered ConfigMap loads as a keeper
configuration, and the commands NOTES.txt prints parse with the real kubectl."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_tools import (
    CHART,
    DASHBOARD,
    EXAMPLES,
    KUBERNETES_VERSION,
    by_kind,
    helm_args,
    load_yaml,
    missing,
    one,
    render,
    run,
    tool,
)

from keeper.program.ids import DEVNET
from keeper.service.settings import Settings, load_settings

VALUE_SETS = [pytest.param((), id="defaults")] + [
    pytest.param((path,), id=path.stem) for path in EXAMPLES
]
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


@pytest.fixture(scope="session")
def helm() -> Path:
    path = tool("helm")
    version = run([path, "version", "--short"])
    assert version.startswith("v4."), f"helm v4 expected, got {version}"
    return path


@pytest.fixture(scope="session")
def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate  # noqa: PLC0415 - optional tool, installed by the script
    except ImportError:
        missing("kubernetes-validate is not installed")
    return kubernetes_validate


def _clean_keeper_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("KEEPER_")]:
        monkeypatch.delenv(name)


# --------------------------------------------------------------------------- helm lint/render


@pytest.mark.parametrize("values", VALUE_SETS)
def test_helm_lint_strict_passes(helm: Path, values: tuple[Path, ...]) -> None:
    out = run([helm, "lint", "--strict", CHART, *helm_args(values)])
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_manifest_validates_against_kubernetes(
    helm: Path, kubernetes_validate: Any, values: tuple[Path, ...]
) -> None:
    manifests = render(helm, values)
    assert {m["kind"] for m in manifests} >= {"ConfigMap", "Deployment", "Service"}
    for manifest in manifests:
        if manifest["kind"] in OPERATOR_KINDS:
            continue  # CRDs: no schema in Kubernetes' OpenAPI; checked by the tests below
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_kubernetes_validate_can_fail(kubernetes_validate: Any) -> None:
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"porst": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("values", VALUE_SETS)
def test_configmap_loads_as_the_keeper_configuration(
    helm: Path, values: tuple[Path, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(helm, values)
    deployment = one(manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    config_map = one(manifests, "ConfigMap", "-nosana-keeper")
    config_file = tmp_path / "keeper.yaml"
    config_file.write_text(config_map["data"]["keeper.yaml"])

    # The environment the pod gets: literal values as rendered, Secret refs as placeholders.
    _clean_keeper_env(monkeypatch)
    for env in container.get("env", []):
        monkeypatch.setenv(env["name"], env.get("value", "https://rpc.example.com/?api-key=x"))
    settings = load_settings(config_file=config_file)

    args = container["args"]
    assert args[:2] == ["run", "--config"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert args[2] == f"{mount['mountPath']}/keeper.yaml"
    assert settings.metrics.host == "0.0.0.0"
    assert settings.metrics.port == container["ports"][0]["containerPort"]
    if "--dry-run" not in args:
        assert settings.keypair is not None


def test_devnet_example_configures_the_devnet_program(
    helm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_map = one(render(helm, [CHART / "ci" / "devnet-values.yaml"]), "ConfigMap")
    (tmp_path / "k.yaml").write_text(config_map["data"]["keeper.yaml"])
    _clean_keeper_env(monkeypatch)
    settings = load_settings(config_file=tmp_path / "k.yaml")
    assert settings.program_id == str(DEVNET.jobs_program)
    assert settings.market_admin == str(DEVNET.market_admin)
    assert settings.rpc.url == "https://api.devnet.solana.com"


def test_operator_objects_are_consistent(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, sets=["serviceMonitor.enabled=true", "prometheusRule.enabled=true"])
    service = one(manifests, "Service")
    monitor = one(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [
        service["spec"]["ports"][0]["name"]
    ]
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]

    rule = one(manifests, "PrometheusRule")
    assert set(rule["spec"]) == {"groups"}
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    run([tool("promtool"), "check", "rules", rules_file])


# --------------------------------------------------------------------------- defaults


def test_defaults_are_secure_and_quiet(helm: Path) -> None:
    manifests = render(helm)
    assert not {m["kind"] for m in manifests} & OPERATOR_KINDS
    assert len(by_kind(manifests, "ConfigMap")) == 1, "the dashboard ConfigMap is opt-in"
    deployment = one(manifests, "Deployment")
    spec = deployment["spec"]
    # Two replicas, one sender: leader election on, so rolling updates never leave a gap.
    assert spec["replicas"] == 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True  # for the Lease, and only for it
    assert one(manifests, "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "checksum/config" in spec["template"]["metadata"]["annotations"]
    # No keypair Secret named: nothing to sign with, so the keeper only reports.
    assert "--dry-run" in container["args"]
    assert not [v for v in pod["volumes"] if "secret" in v]


def test_without_leader_election_one_keeper_no_token_no_role(helm: Path) -> None:
    manifests = render(
        helm, sets=["leaderElection.enabled=false", "replicaCount=1", "keypair.existingSecret=k"]
    )
    spec = one(manifests, "Deployment")["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["template"]["spec"]["automountServiceAccountToken"] is False
    assert not {m["kind"] for m in manifests} & {"Role", "RoleBinding", "PodDisruptionBudget"}
    env = spec["template"]["spec"]["containers"][0]["env"]
    assert not [e for e in env if e["name"].startswith("KEEPER_LEADER_ELECTION")]


@pytest.mark.parametrize(
    "sets",
    [
        ["replicaCount=2"],
        ["replicaCount=1", "strategy.type=RollingUpdate"],
    ],
)
def test_two_senders_without_leader_election_are_refused(helm: Path, sets: list[str]) -> None:
    args = ["leaderElection.enabled=false", "keypair.existingSecret=k", *sets]
    out = run([helm, "template", "k", CHART, *helm_args(sets=args)], check=False)
    assert "needs leaderElection.enabled=true" in out


def test_leader_election_objects(
    helm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(helm, sets=["keypair.existingSecret=k"], release="keeper")
    name = "keeper-nosana-keeper"
    role = one(manifests, "Role")
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update", "patch"],
        }
    ]
    binding = one(manifests, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "nosana"}]
    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    deployment = one(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"] == deployment["spec"]["selector"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["KEEPER_LEADER_ELECTION_NAMESPACE"]["valueFrom"]["fieldRef"] == {
        "fieldPath": "metadata.namespace"
    }
    assert env["KEEPER_LEADER_ELECTION_IDENTITY"]["valueFrom"]["fieldRef"] == {
        "fieldPath": "metadata.name"
    }
    config_file = tmp_path / "keeper.yaml"
    config_file.write_text(one(manifests, "ConfigMap")["data"]["keeper.yaml"])
    _clean_keeper_env(monkeypatch)
    election = load_settings(config_file=config_file).leader_election
    assert election.enabled is True
    assert election.lease_name == name


def test_pdb_api_follows_the_cluster(helm: Path) -> None:
    def pdb(version: str) -> str:
        out = run([helm, "template", "k", CHART, "--kube-version", version])
        docs = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "PodDisruptionBudget"]
        return str(docs[0]["apiVersion"])

    assert pdb("1.20.2") == "policy/v1beta1"
    assert pdb("1.33.0") == "policy/v1"


def test_keypair_is_mounted_read_only_from_the_named_secret(helm: Path) -> None:
    manifests = render(helm, sets=["keypair.existingSecret=kp", "keypair.key=id.json"])
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volume = next(v for v in pod["volumes"] if v["name"] == "keypair")
    assert volume["secret"]["secretName"] == "kp"
    assert volume["secret"]["items"] == [{"key": "id.json", "path": "id.json"}]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "keypair")
    assert mount["readOnly"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KEEPER_KEYPAIR"] == f"{mount['mountPath']}/id.json"
    assert "--dry-run" not in container["args"]


def test_config_change_changes_the_checksum(helm: Path) -> None:
    def checksum(*sets: str) -> str:
        deployment = one(render(helm, sets=list(sets)), "Deployment")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum() == checksum()
    assert checksum() != checksum("config.clean.interval_seconds=900")


def test_dashboard_configmap_carries_the_dashboard_for_the_sidecar(helm: Path) -> None:
    manifests = render(helm, sets=["dashboard.enabled=true", "dashboard.namespace=monitoring"])
    config_map = one(manifests, "ConfigMap", "-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert json.loads(config_map["data"]["nosana-keeper.json"]) == json.loads(DASHBOARD.read_text())


def test_alert_thresholds_come_from_values(helm: Path) -> None:
    rule = one(
        render(
            helm,
            sets=[
                "prometheusRule.enabled=true",
                "prometheusRule.balanceLow.thresholdLamports=123456789",
                "config.clean.interval_seconds=100",
                "config.schedule.jitter_seconds=0",
            ],
        ),
        "PrometheusRule",
    )
    exprs = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert exprs["NosanaKeeperBalanceLow"].splitlines() == [
        "nosana_keeper_balance_lamports < 123456789",
        "unless nosana_keeper_dry_run == 1",  # a dry run spends nothing
    ]
    assert '{task="finished_jobs"} > 0) > 300' in exprs["NosanaKeeperTaskStalled"]


# --------------------------------------------------------------------------- values and schema


def test_values_config_mirrors_the_settings_defaults() -> None:
    values = load_yaml(CHART / "values.yaml")
    expected = Settings().model_dump(mode="json")
    del expected["keypair"]  # mounted by the chart, set through KEEPER_KEYPAIR
    assert values["config"] == expected


_PUBKEYS = {"program_id", "market_admin", "nos_mint"}
PUBKEY_PATTERN = "^[1-9A-HJ-NP-Za-km-z]{32,44}$"


def config_schema() -> dict[str, Any]:
    """values.schema.json's `config`, derived from the settings model (draft-07, no $refs)."""
    raw = Settings.model_json_schema()
    defs = raw.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = dict(defs[node["$ref"].rsplit("/", 1)[-1]])
            target.update({k: v for k, v in node.items() if k != "$ref"})
            return inline(target)
        any_of = node.get("anyOf")
        if any_of and all(set(option) <= {"type", "format"} for option in any_of):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            rest["type"] = [option["type"] for option in any_of]
            return inline(rest)
        out = {k: inline(v) for k, v in node.items() if k not in {"title", "format", "$defs"}}
        if "properties" in node:  # property names are not keywords: keep every one
            out["properties"] = {k: inline(v) for k, v in node["properties"].items()}
        return out

    schema: dict[str, Any] = inline(raw)
    schema["properties"].pop("keypair")  # the chart mounts it and sets KEEPER_KEYPAIR
    schema["properties"]["metrics"]["properties"]["port"]["minimum"] = 1  # a pod: fixed port
    schema["additionalProperties"] = False
    for name, prop in schema["properties"].items():
        if prop.get("type") == "object":
            prop.pop("default", None)  # values.yaml holds the defaults
        if name in _PUBKEYS:
            prop["pattern"] = PUBKEY_PATTERN
    nft = schema["properties"]["claim"]["properties"]["nft"]
    nft["anyOf"] = [{"type": "string", "pattern": PUBKEY_PATTERN}, {"type": "null"}]
    del nft["type"]
    schema["description"] = (
        "The keeper's settings (keeper/service/settings.py), rendered into keeper.yaml."
    )
    return schema


def test_values_schema_config_is_the_settings_model() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["properties"]["config"] == config_schema(), (
        "values.schema.json `config` drifted from keeper/service/settings.py"
    )


def test_every_object_in_the_schema_is_closed() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects = {
        "strategy.rollingUpdate",
        "serviceAccount.annotations",
        "deploymentAnnotations",
        "podLabels",
        "podAnnotations",
        "podSecurityContext",
        "securityContext",
        "resources",
        "livenessProbe",
        "readinessProbe",
        "nodeSelector",
        "affinity",
        "service.annotations",
        "serviceMonitor.additionalLabels",
        "prometheusRule.additionalLabels",
        "prometheusRule.alertLabels",
        "dashboard.sidecarLabel",
        "dashboard.annotations",
    }

    def walk(node: dict[str, Any], path: str) -> list[str]:
        found = []
        if node.get("type") == "object" and "properties" in node:
            if node.get("additionalProperties") is not False:
                found.append(path or "<root>")
            for name, child in node["properties"].items():
                found += walk(child, f"{path}.{name}".lstrip("."))
        elif node.get("type") == "object" and path not in open_objects:
            found.append(path)
        return found

    assert walk(schema, "") == []


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("typo=1", "additional properties 'typo'"),
        ("config.rpc.bogus=1", "additional properties 'bogus'"),
        ("keypair.privateKey=abc", "additional properties 'privateKey'"),
        ("config.fees.percentile=101", "maximum"),
        ("config.program_id=not-a-key", "does not match pattern"),
        ("strategy.type=Sometimes", "must be one of"),
        ("prometheusRule.failureRatio.window=15 minutes", "does not match pattern"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, setting: str, complaint: str) -> None:
    out = run([helm, "template", "k", CHART, "--set", setting], check=False)
    assert complaint in out


# --------------------------------------------------------------------------- NOTES.txt


def _notes(helm: Path, values: tuple[Path, ...]) -> str:
    install: list[str | Path] = [
        helm,
        "install",
        "keeper",
        CHART,
        "--namespace",
        "nosana",
        "--dry-run=client",
    ]
    out = run([*install, *helm_args(values)])
    return out.split("NOTES:\n", 1)[1]


@pytest.fixture
def offline_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig whose API server is a closed loopback port: commands parse, then fail to
    connect, so a parse error is told apart from the missing cluster."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "none", "user": {"token": "not-a-token"}}],
        "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
        "current-context": "none",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.mark.parametrize("values", VALUE_SETS)
def test_notes_commands_are_real(
    helm: Path, values: tuple[Path, ...], offline_kubeconfig: Path, tmp_path: Path
) -> None:
    notes = _notes(helm, values)
    manifests = render(helm, values)
    names = {f"{m['kind'].lower()}/{m['metadata']['name']}" for m in manifests}
    kubectl = tool("kubectl")
    (tmp_path / "keeper.json").write_text("[]")
    commands = [line.strip() for line in notes.splitlines() if line.strip().startswith("kubectl ")]
    assert commands, notes
    for command in commands:
        words = shlex.split(command)
        for ref in (w for w in words if re.fullmatch(r"(deployment|service)/[\w.-]+", w)):
            assert ref in names, f"NOTES names {ref}, which the chart does not create"
        if "create" in words:
            words += ["--dry-run=client", "-o", "name"]
        out = run([kubectl, *words[1:], "--request-timeout=2s"], check=False, cwd=tmp_path)
        assert "unknown" not in out.lower(), f"{command}: {out}"
        assert "refused" in out or out.startswith("secret/"), f"{command}: {out}"
    service = one(manifests, "Service")
    port = service["spec"]["ports"][0]["port"]
    assert f"http://127.0.0.1:{port}/readyz" in notes


def test_notes_warn_about_dry_run_without_a_keypair(helm: Path) -> None:
    assert "DRY RUN" in _notes(helm, ())
    assert "DRY RUN" not in _notes(helm, (CHART / "ci" / "mainnet-values.yaml",))


# --------------------------------------------------------------------------- README


def _documented_keys() -> list[str]:
    """Key paths of values.yaml with a helm-docs `# --` comment."""
    keys: list[str] = []
    stack: list[str] = []
    pending = False
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = True
            continue
        match = re.match(r"^( *)([A-Za-z_][\w-]*):", line)
        if not match or stripped.startswith("#"):
            continue
        depth = len(match.group(1)) // 2
        stack = [*stack[:depth], match.group(2)]
        if pending:
            keys.append(".".join(stack))
        pending = False
    return keys


def test_every_value_is_documented_in_the_readme() -> None:
    readme = (CHART / "README.md").read_text()
    keys = _documented_keys()
    assert len(keys) > 50
    undocumented = [key for key in keys if f"| `{key}` |" not in readme]
    assert undocumented == []


def test_readme_shows_each_example_values_file_verbatim() -> None:
    readme = (CHART / "README.md").read_text()
    for example in EXAMPLES:
        assert example.read_text().strip() in readme, f"{example.name} differs from the README"


# --------------------------------------------------------------------------- NetworkPolicy

NETWORK_POLICY = CHART / "ci" / "network-policy-values.yaml"


def test_no_network_policy_by_default(helm: Path) -> None:
    assert by_kind(render(helm), "NetworkPolicy") == []


def test_network_policy_admits_only_the_chosen_peers_to_the_metrics_port(
    helm: Path, kubernetes_validate: Any
) -> None:
    manifests = render(helm, [NETWORK_POLICY])
    policy = one(manifests, "NetworkPolicy")
    kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
    pod = one(manifests, "Deployment")["spec"]["template"]
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert selected.items() <= pod["metadata"]["labels"].items()
    assert policy["metadata"]["namespace"] == one(manifests, "Deployment")["metadata"]["namespace"]
    (rule,) = policy["spec"]["ingress"]
    container_ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert [p["port"] for p in rule["ports"]] == ["metrics"]
    assert "metrics" in container_ports
    values = yaml.safe_load(NETWORK_POLICY.read_text())["networkPolicy"]
    assert rule["from"] == values["ingressFrom"]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == values["egress"]


def test_network_policy_without_peers_denies_all_ingress_and_leaves_egress_open(
    helm: Path, kubernetes_validate: Any
) -> None:
    policy = one(render(helm, sets=["networkPolicy.enabled=true"]), "NetworkPolicy")
    kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
    assert policy["spec"]["ingress"] == []
    assert policy["spec"]["policyTypes"] == ["Ingress"]  # egress not restricted
    assert "egress" not in policy["spec"]


@pytest.mark.parametrize(
    "setting",
    [
        "networkPolicy.ingressFrom[0].namespace=monitoring",
        "networkPolicy.allowAll=true",
    ],
)
def test_schema_rejects_unknown_network_policy_keys(helm: Path, setting: str) -> None:
    out = run([helm, "template", "k", CHART, "--set", setting], check=False)
    assert "additional properties" in out
