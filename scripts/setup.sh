#!/usr/bin/env bash
# Installs every build and test dependency of ipguard from Debian's packages.
# Idempotent: packages already present are left alone, and apt-get update
# runs only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  clang libclang-rt-14-dev            # libFuzzer and sanitizers
  nlohmann-json3-dev libyaml-cpp-dev  # core and ipguard check
  libcpprest-dev libssl-dev libspdlog-dev libboost-dev  # kube client, webhook, logging
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  python3
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev  # renders the Helm chart in tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
