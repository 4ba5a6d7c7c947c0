#!/usr/bin/env bash
# Runs every benchmark of bench/ against a build directory; prints one table each.
# Some need root (network namespaces, nftables); they say so and are skipped otherwise.
set -uo pipefail
BUILD=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
echo "== plan (issue 2)"; "$BUILD/bench/plan_bench" "$BUILD/amlfw" 11
echo "== service tags parse"; "$BUILD/bench/service_tags_bench" 15
for b in "$BUILD"/bench/*_bench; do
  case "$(basename "$b")" in plan_bench|service_tags_bench) continue ;; esac
  echo "== $(basename "$b")"; "$b" || echo "($(basename "$b") failed)"
done
for s in "$here"/*.sh; do
  [ "$(basename "$s")" = run.sh ] && continue
  echo "== $(basename "$s")"; bash "$s" "$BUILD" || echo "($(basename "$s") failed)"
done
