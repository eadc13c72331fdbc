#!/usr/bin/env bash
# Starts Lookout on this machine: the aggregator (embedded storage under
# ./demo) and a local agent tailing /var/log/**/*.log (where readable) plus a
# demo log this script writes. Prints the URL and tokens; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
demo="${LOOKOUT_DEMO_DIR:-$root/demo}"
port="${LOOKOUT_PORT:-7070}"
mkdir -p "$demo/logs"

cargo build --release --bins --quiet
bin="${CARGO_TARGET_DIR:-$root/target}/release"

token_file="$demo/tokens"
if [ ! -f "$token_file" ]; then
  printf 'INGEST=%s\nAPI=%s\n' "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" \
    "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" > "$token_file"
  chmod 600 "$token_file"
fi
# shellcheck disable=SC1090
. "$token_file"

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
rotate = { max_size = "10MB", keep = 3 }
TOML

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$bin/lookout-aggregator" --config "$demo/aggregator.toml" 2>>"$demo/aggregator.log" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
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

# The first start creates the web UI user `admin` and prints its password once.
admin_password=$(grep -A4 "the user \`admin\` was created" "$demo/aggregator.log" | sed -n 's/^    //p' | tail -n 1)
cat <<MSG
Lookout is running.
  URL:        http://127.0.0.1:$port
  Web login:  admin / ${admin_password:-(see the first run's $demo/aggregator.log)}
  API token:  $API   (ingest token and both configs in $demo)
  Try:        curl -H "Authorization: Bearer $API" 'http://127.0.0.1:$port/api/v1/logs/search?q=demo&limit=5'
  Logs:       $demo/aggregator.log, $demo/agent.log
Ctrl-C stops everything.
MSG
wait
