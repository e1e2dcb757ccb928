#!/usr/bin/env bash
# The main job: set up, build, and run `ipguard check` on the shipped examples.
# examples/clean must pass (exit 0); examples/broken must fail (exit 1) and
# list every mistake; examples/azure (Azure's resources as az prints them and an
# ARM template) must pass.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh -DIPGUARD_TESTS=OFF -DIPGUARD_BENCH=OFF

echo "== ipguard check examples/clean"
build/cmd/ipguard check examples/clean

echo
echo "== ipguard check examples/broken (expected to fail with exit 1)"
set +e
build/cmd/ipguard check examples/broken
rc=$?
set -e
if [ "$rc" -ne 1 ]; then
  echo "examples/broken: expected exit 1, got $rc" >&2
  exit 1
fi
echo "examples/broken: exit 1 as expected"

echo
echo "== ipguard check examples/azure (Azure's own resources: az output and an ARM template)"
build/cmd/ipguard check --parameters examples/azure/main.parameters.json examples/azure
