#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined)
# into build-fuzz/ and runs each for SECONDS (default 20) from its seed corpus.
# Any crash, leak or sanitizer report fails the script.
# A longer run: scripts/fuzz.sh 3600
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-20}
cmake -S . -B build-fuzz -G Ninja -DIPGUARD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j "$(nproc)"
for target in build-fuzz/tests/fuzz/fuzz_*; do
  name=$(basename "$target")
  corpus=tests/fuzz/corpus/${name#fuzz_}
  seeds=()
  if [ "$name" = fuzz_manifest ]; then seeds=(examples/clean examples/broken examples/azure tests/fixtures/rules tests/fixtures/azure); fi
  dict=()
  if [ -f "tests/fuzz/${name#fuzz_}.dict" ]; then dict=(-dict="tests/fuzz/${name#fuzz_}.dict"); fi
  work=$(mktemp -d)
  mkdir -p "$work/corpus"
  echo "== $name for ${SECONDS_EACH}s"
  "$target" -artifact_prefix="$work/" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
    -print_final_stats=1 "$work/corpus" "$corpus" "${seeds[@]}" >"$work/log" 2>&1 || {
    tail -n 40 "$work/log"
    echo "fuzz: $name failed; the input is kept in $(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null)" >&2
    exit 1
  }
  grep -E "^(Done|stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)" "$work/log"
  rm -rf "$work"
done
echo "fuzz: all targets ran without a crash"
