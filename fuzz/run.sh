#!/usr/bin/env bash
# Fuzz each target for a bounded time from its seeds (fuzz/corpus/<target>/seed-*), then
# say how many inputs it ran and whether it found anything. Exits 1 if any target crashed,
# timed out or ran out of memory; the input is kept in fuzz/artifacts/<target>/ and
# `cargo fuzz run <target> <that file>` replays it.
#
#   bash fuzz/run.sh                   every target, 60 s each
#   FUZZ_SECONDS=600 bash fuzz/run.sh token path
#
# Installs cargo-fuzz (crates.io) if missing. cargo fuzz needs nightly's -Z flags: the
# nightly toolchain if one is installed, else the installed one with RUSTC_BOOTSTRAP=1
# (FUZZ_TOOLCHAIN=name picks one). What the fuzzer adds to a corpus goes to
# fuzz/target/corpus/<target>, kept between local runs and never committed.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(token config path identity upstream)
started=$SECONDS

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
  echo "   installed in $((SECONDS - started)) s"
fi

toolchain=${FUZZ_TOOLCHAIN:-}
if [ -z "$toolchain" ] && rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=nightly
fi
fuzz=(cargo ${toolchain:+"+$toolchain"} fuzz)
rustc_version=$(rustc ${toolchain:+"+$toolchain"} --version)
case "$rustc_version" in
  *nightly*) ;;
  *) export RUSTC_BOOTSTRAP=1 ;; # lets a stable compiler take cargo fuzz's -Z flags
esac

echo "== building the fuzz targets with $rustc_version${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}"
build_started=$SECONDS
for t in "${targets[@]}"; do
  "${fuzz[@]}" build "$t"
done
echo "   built in $((SECONDS - build_started)) s"

failed=()
summary=()
for t in "${targets[@]}"; do
  work=target/corpus/$t
  log=target/fuzz-$t.log
  mkdir -p "$work" "artifacts/$t"
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  [ -f "dict/$t.dict" ] && options+=(-dict="dict/$t.dict")
  known=$(ls "artifacts/$t" | sort)
  echo "== fuzzing $t for ${seconds} s"
  rc=0
  run_started=$SECONDS
  # libFuzzer stops itself after max_total_time; the outer timeout only guards a hang.
  timeout --signal=INT --kill-after=30 $((seconds + 120)) \
    "${fuzz[@]}" run "$t" "$work" "corpus/$t" -- "${options[@]}" >"$log" 2>&1 || rc=$?
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || true)
  new=$(comm -13 <(echo "$known") <(ls "artifacts/$t" | sort) | sed "s|^|fuzz/artifacts/$t/|" | tr '\n' ' ')
  if [ "$rc" -eq 0 ] && [ -z "$new" ]; then
    found="nothing found"
  else
    found="FOUND (exit $rc): ${new:-see fuzz/$log}"
    failed+=("$t")
    grep -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|^SUMMARY' "$log" | head -5 | sed 's/^/   /' || true
  fi
  line="$t: ${runs:-?} executions in $((SECONDS - run_started)) s, $found"
  echo "   $line"
  summary+=("$line")
done

echo "== fuzz summary ($((SECONDS - started)) s in all)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}"
  exit 1
fi
echo "fuzz: nothing found"
