#!/usr/bin/env bash
# Starts Lookout on this machine: the aggregator (embedded storage under
# ./demo) and a local agent tailing /var/log/**/*.log (where readable) plus a
# demo log this script writes. Prints the URL, the web login and the API
# token; Ctrl-C stops everything it started.
#
# LOOKOUT_DEMO_DIR (default ./demo) and LOOKOUT_PORT (default 7070) move it;
# LOOKOUT_BIN_DIR runs binaries already built there instead of building the
# release ones (the test suite's demo test uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
demo="${LOOKOUT_DEMO_DIR:-$root/demo}"
port="${LOOKOUT_PORT:-7070}"
umask 077
mkdir -p "$demo/logs"

if [ -n "${LOOKOUT_BIN_DIR:-}" ]; then
  bin="$LOOKOUT_BIN_DIR"
else
  echo "building the release binaries (the first build takes a few minutes)..."
  cargo build --release --bins --quiet
  bin="${CARGO_TARGET_DIR:-$root/target}/release"
fi

random_secret() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
token_file="$demo/tokens"
if [ ! -f "$token_file" ]; then
  printf 'INGEST=%s\nAPI=%s\n' "$(random_secret)" "$(random_secret)" > "$token_file"
fi
# shellcheck disable=SC1090
. "$token_file"
if [ -z "${ADMIN_PASSWORD:-}" ]; then
  ADMIN_PASSWORD="$(random_secret)"
  printf 'ADMIN_PASSWORD=%s\n' "$ADMIN_PASSWORD" >> "$token_file"
fi

cat > "$demo/aggregator.toml" <<TOML
listen = "127.0.0.1:$port"
data_dir = "$demo/data"
[auth]
ingest_tokens = ["$INGEST"]
api_tokens = ["$API"]
TOML
cat > "$demo/agent.toml" <<TOML
aggregator_url = "http://127.0.0.1:$port"
token = "$INGEST"
state_dir = "$demo/agent-state"
[[logs]]
paths = ["/var/log/**/*.log"]
exclude = ["*.gz", "$demo/**"]
[[logs]]
paths = ["$demo/logs/*.log"]
rotate = { max_size = "10MB", keep = 3 }   # the writer below reopens the file for every line
TOML

# The web login: created here, before the first start, so that its password
# comes from the tokens file rather than from the aggregator's stderr.
if ! "$bin/lookout-aggregator" --config "$demo/aggregator.toml" user list 2>/dev/null | grep -q '^admin\b'; then
  printf '%s\n' "$ADMIN_PASSWORD" |
    "$bin/lookout-aggregator" --config "$demo/aggregator.toml" user add --admin admin >/dev/null
fi

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$bin/lookout-aggregator" --config "$demo/aggregator.toml" 2>>"$demo/aggregator.log" &
pids+=($!)
ready=""
for _ in $(seq 1 200); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "${pids[0]}" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "the aggregator did not start; the end of $demo/aggregator.log:" >&2
  tail -n 20 "$demo/aggregator.log" >&2
  exit 1
fi
"$bin/lookout-agent" --config "$demo/agent.toml" 2>>"$demo/agent.log" &
pids+=($!)

(
  levels=(INFO INFO INFO WARN ERROR)
  n=0
  while true; do
    level=${levels[$((n % 5))]}
    echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $level demo-app request handled id=$n" >> "$demo/logs/demo.log"
    n=$((n + 1))
    sleep 1
  done
) &
pids+=($!)

cat <<MSG
Lookout is running.
  URL:        http://127.0.0.1:$port
  Web login:  admin / $ADMIN_PASSWORD
  API token:  $API   (ingest token, both configs and this login in $demo)
  Try:        curl -H "Authorization: Bearer $API" 'http://127.0.0.1:$port/api/v1/logs/search?q=demo&limit=5'
  Logs:       $demo/aggregator.log, $demo/agent.log
Ctrl-C stops everything.
MSG
wait
