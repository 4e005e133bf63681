#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time; exits non-zero when any target
# finds a crash, leak, timeout or out-of-memory input (or does not build).
#
#   fuzz/ci.sh [SECONDS_PER_TARGET]      # default 20
#
# The run is reproducible: a fixed seed (FUZZ_SEED, default 1) and an empty work corpus make
# every run execute a prefix of the same input sequence, at most FUZZ_RUNS inputs per target
# (default 300000), so a CI pass that stops earlier can only find what a longer local pass
# with the same seed already found. Set FUZZ_SEED=0 for a random seed when hunting.
#
# Needs a nightly toolchain (installed with rustup when missing) and cargo-fuzz (installed
# when missing). Committed seeds in fuzz/corpus/<target>/ are read but never written: new
# inputs go to fuzz/target/corpus-work/<target>/. Crashing inputs land in
# fuzz/artifacts/<target>/; each target's libFuzzer log is kept in fuzz/artifacts/logs/.
# A table of executions per target is printed at the end (the numbers in fuzz/README.md).
set -euo pipefail

secs="${1:-20}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi

cargo +nightly fuzz build
targets=$(cargo +nightly fuzz list)

# Longest input per target (libFuzzer's -max_len; 0 = its default, the larger of 4096 and the
# longest seed). The Redis targets read values up to the 64 KiB JWE limit (MAX_JWE_LEN) and
# beyond: their inputs must be able to get there.
max_len() {
  case "$1" in
    redis_values | redis_replies) echo 140000 ;;
    *) echo 0 ;;
  esac
}

mkdir -p artifacts/logs
failed=()
table=$'| target | exec/s | total execs | result |\n|---|---:|---:|---|'
for t in $targets; do
  work="target/corpus-work/$t"
  # A seeded run starts from the committed seeds only, so it is reproducible.
  if [ "${FUZZ_SEED:-1}" != 0 ]; then rm -rf "$work"; fi
  mkdir -p "$work" "corpus/$t"
  rm -f fuzz-0.log
  echo "=== $t (${secs}s)"
  # One job, one worker (the machine is shared); libFuzzer then logs to fuzz-0.log.
  if cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- \
      -max_total_time="$secs" -seed="${FUZZ_SEED:-1}" -runs="${FUZZ_RUNS:-300000}" \
      -jobs=1 -workers=1 -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
      -print_final_stats=1; then
    result=ok
  else
    result=FAILED
    failed+=("$t")
  fi
  log="artifacts/logs/$t.log"
  if [ -f fuzz-0.log ]; then mv fuzz-0.log "$log"; else : >"$log"; fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  tail -n 3 "$log"
  table+=$'\n'"| \`$t\` | ${rate:-?} | ${execs:-?} | $result |"
done

echo
echo "$table"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/artifacts/logs/)" >&2
  exit 1
fi
