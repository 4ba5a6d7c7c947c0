#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a while on a copy of its seed corpus.
#   tests/fuzz/run.sh BUILD_DIR SECONDS
# BUILD_DIR comes from: cmake -S . -B BUILD_DIR -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
#                       -DAMLFW_FUZZ=ON -DAMLFW_BENCH=OFF -DAMLFW_TESTS=OFF && cmake --build BUILD_DIR
# For each BUILD_DIR/tests/fuzz/<name>_fuzz: corpus tests/fuzz/corpus/<name>/ (copied to a
# temporary directory: the repository is never written), dictionary tests/fuzz/<name>.dict if
# present. Prints one line per fuzzer and ends with "N passed, N failed"; exits 1 if any
# fuzzer failed (crash, sanitizer report, timeout, leak) or none was found. The input and
# log of a failure are kept under BUILD_DIR/fuzz-failures/<name>/.
set -uo pipefail

if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]] || [ "$2" -lt 1 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$(cd "$1" 2>/dev/null && pwd) || { echo "run.sh: no build directory $1" >&2; exit 2; }
seconds=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# UBSan reports are failures too (the fuzz build compiles -fsanitize=undefined recoverable).
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

work=$(mktemp -d /tmp/amlfw-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
shopt -s nullglob
fuzzers=("$build"/tests/fuzz/*_fuzz)
if [ ${#fuzzers[@]} -eq 0 ]; then
  echo "no fuzzer in $build/tests/fuzz (configure with -DAMLFW_FUZZ=ON and build)"
  echo "0 passed, 0 failed"
  exit 1
fi

for bin in "${fuzzers[@]}"; do
  [ -x "$bin" ] || continue
  exe=$(basename "$bin")
  name=${exe%_fuzz}
  corpus="$work/$name/corpus"
  mkdir -p "$corpus" "$work/$name/artifacts"
  seeds=0
  if [ -d "$here/corpus/$name" ]; then
    cp -R "$here/corpus/$name/." "$corpus/"
    seeds=$(find "$corpus" -type f | wc -l)
  fi
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$work/$name/artifacts/")
  [ -f "$here/$name.dict" ] && args+=(-dict="$here/$name.dict")
  log="$work/$name/log"
  start=$(date +%s)
  (cd "$work/$name" && "$bin" "${args[@]}" "$corpus") >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  grown=$(find "$corpus" -type f | wc -l)
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "PASS $exe: ${runs:-?} runs in ${took}s, corpus $seeds -> $grown"
  else
    failed=$((failed + 1))
    keep="$build/fuzz-failures/$name"
    mkdir -p "$keep"
    cp "$log" "$keep/log"
    cp "$work/$name/artifacts/"* "$keep/" 2>/dev/null
    reason=$(grep -m1 -oE '(ERROR: [A-Za-z]+: |runtime error: ).{0,60}' "$log" | head -1)
    echo "FAIL $exe: exit $rc after ${took}s: ${reason:-see log}; input and log in $keep"
  fi
done

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
