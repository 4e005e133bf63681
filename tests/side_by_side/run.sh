#!/usr/bin/env bash
# Side by side: the same cache-hit workload in Auth0's Python server SDK (auth0-server-python,
# from PyPI), Auth0's JS server SDK (@auth0/auth0-server-js, from npm) and this SDK, in one run,
# with the ratios. Not part of `cargo test`.
#
#   tests/side_by_side/run.sh [ITERATIONS]      # peers' calls per workload, default 2000
#
# The workload: serve the access token of the default audience from the realistic session in
# tests/data/session.json (about 4.4 KB of JSON: 11 user claims, a 900-character ID token, a
# refresh token, 3 audiences' 800-character access tokens), which the browser sends back as
# an encrypted cookie in two chunks (A256CBC-HS512 JWE, about 6 KB). Each call parses the
# Cookie header and asks the SDK's client for the access token: a cache hit, no network.
#   python  ServerClient.get_access_token, the session in chunked cookies as auth0-fastapi's
#           StatelessStateStore keeps them (bench_python.py; the Python SDK ships no cookie store)
#   js      ServerClient.getAccessToken with the SDK's StatelessStateStore (bench_js.mjs)
#   ours    blocking::ServerClient::get_access_token with CookieStateStore
#           (adapters/benches/side_by_side.rs): cold (decoded-session cache off: decrypt and
#           parse every call, as the peers do), a new cookie each call (cache on, always a
#           miss), warm (the decoded-session cache hit), and the store read plus token-set
#           decision without the client.
# Every program warms up, then times its calls in short samples (one call each for the peers,
# whose calls take hundreds of microseconds; 20 calls for ours) and reports the median per-call
# time over samples (which leaves out the samples in which a loaded machine descheduled it, as
# divan's median does) and the mean (which keeps them). The programs run
# one after another; the ratios printed come from this one run, so run it on a quiet machine
# if you can.
#
# Installs into a scratch directory (a Python venv and a node_modules; removed at the end
# unless SIDE_BY_SIDE_DIR names one to reuse). Missing python3/venv/pip/node/npm are installed
# with apt-get (Debian/Ubuntu, as root or with sudo). Needs cargo (the repo's toolchain).
# Environment: SIDE_BY_SIDE_DIR (scratch dir to reuse), PY_SDK (pip requirement, default
# auth0-server-python), JS_SDK (npm spec, default @auth0/auth0-server-js), RUST_ITERATIONS
# (ours, default 10 x ITERATIONS), WARMUP (peers, default ITERATIONS / 10), PEER_SAMPLE_SIZE
# (1) and RUST_SAMPLE_SIZE (20): calls per timed sample.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
iterations="${1:-2000}"
case "$iterations" in
  '' | *[!0-9]*) echo "usage: $0 [iterations]" >&2; exit 2 ;;
esac
rust_iterations="${RUST_ITERATIONS:-$((iterations * 10))}"
warmup="${WARMUP:-$((iterations / 10))}"
peer_sample_size="${PEER_SAMPLE_SIZE:-1}"
rust_sample_size="${RUST_SAMPLE_SIZE:-20}"
session="$repo/tests/data/session.json"

# --- prerequisites ---------------------------------------------------------------------------
need=()
command -v python3 >/dev/null || need+=(python3)
# Debian splits venv (ensurepip) out of python3.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then need+=(python3-venv); fi
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "missing ${need[*]} and no apt-get: install them and rerun" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "installing ${need[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is needed (see README: set-up)" >&2; exit 1; }

node_major=$(node -p 'process.versions.node.split(".")[0]')
node_flags=()
if [ "$node_major" -lt 19 ]; then
  # jose (under the JS SDK) uses the global Web Crypto object, global from Node 19 on.
  node_flags+=(--experimental-global-webcrypto)
  echo "note: Node $node_major; the JS SDK targets Node 20+ (running with ${node_flags[*]})"
fi

# --- scratch installs ------------------------------------------------------------------------
if [ -n "${SIDE_BY_SIDE_DIR:-}" ]; then
  scratch="$SIDE_BY_SIDE_DIR"
  mkdir -p "$scratch"
else
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
fi
echo "scratch directory: $scratch"

if [ ! -x "$scratch/venv/bin/python" ]; then python3 -m venv "$scratch/venv"; fi
"$scratch/venv/bin/python" -m pip install -q --disable-pip-version-check \
  "${PY_SDK:-auth0-server-python}"
if [ ! -f "$scratch/package.json" ]; then
  printf '{"name":"side-by-side","private":true,"type":"module"}\n' >"$scratch/package.json"
fi
(cd "$scratch" && npm install --silent --no-audit --no-fund "${JS_SDK:-@auth0/auth0-server-js}")
cp "$here/bench_python.py" "$here/bench_js.mjs" "$scratch/"

py_version=$("$scratch/venv/bin/python" -m pip show auth0-server-python | sed -n 's/^Version: //p')
js_version=$(node -p "require('$scratch/node_modules/@auth0/auth0-server-js/package.json').version")

# --- build ours first (not timed) ------------------------------------------------------------
(cd "$repo" && cargo bench -q -p auth0-server --bench side_by_side --no-run)

# --- run -------------------------------------------------------------------------------------
out="$scratch/results.txt"
: >"$out"
echo
echo "== ours (auth0-server, $rust_iterations calls per workload)"
(cd "$repo" && cargo bench -q -p auth0-server --bench side_by_side -- \
  --iterations "$rust_iterations" --warmup "$((rust_iterations / 10))" --sample-size "$rust_sample_size") |
  tee -a "$out"
echo "== python (auth0-server-python $py_version, $iterations calls)"
(cd "$scratch" && venv/bin/python bench_python.py \
  "$session" "$iterations" "$warmup" "$peer_sample_size") | tee -a "$out"
echo "== js (@auth0/auth0-server-js $js_version, node $(node --version), $iterations calls)"
(cd "$scratch" && node "${node_flags[@]}" bench_js.mjs "$session" "$iterations" "$warmup" "$peer_sample_size") |
  tee -a "$out"

# --- table -----------------------------------------------------------------------------------
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
python3 - "$out" "$py_version" "$js_version" <<'EOF'
import sys
results = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if parts and parts[0] == "RESULT":
        results[parts[1]] = (float(parts[2]), float(parts[3]), int(parts[4]))
labels = {
    "python": f"Python SDK {sys.argv[2]}: get_access_token",
    "js": f"JS SDK {sys.argv[3]}: getAccessToken",
    "client_cold": "ours: get_access_token, cache off (decrypt every call)",
    "client_new_cookie": "ours: get_access_token, a new cookie each call",
    "client_warm": "ours: get_access_token, decoded-session cache hit",
    "store_cold": "ours: store read + decision, cache off",
}
cold = results["client_cold"][0]
warm = results["client_warm"][0]
print("| workload (same session, cookie cache hit) | µs/call (median) | mean | × ours cold | × ours warm |")
print("|---|---:|---:|---:|---:|")
for key in ["python", "js", "client_cold", "client_new_cookie", "client_warm", "store_cold"]:
    if key in results:
        median, mean, _ = results[key]
        print(f"| {labels[key]} | {median:.1f} | {mean:.1f} | {median / cold:.1f} | {median / warm:.1f} |")
print()
print(f"Python SDK / ours: {results['python'][0] / cold:.1f}x cold, {results['python'][0] / warm:.0f}x warm; "
      f"JS SDK / ours: {results['js'][0] / cold:.1f}x cold, {results['js'][0] / warm:.0f}x warm")
EOF
