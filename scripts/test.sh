#!/usr/bin/env bash
# Set up, build, and run every test: unit and component tests (ctest), then
# each libFuzzer target for a short bounded time (FUZZ_SECONDS, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh -DIPGUARD_TESTS=ON -DIPGUARD_BENCH=ON
ctest --test-dir build --output-on-failure -j "$(nproc)"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
