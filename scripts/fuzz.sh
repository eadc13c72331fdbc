#!/usr/bin/env bash
# Fuzzes what Lookout reads from outside with cargo fuzz (libFuzzer, nightly
# toolchain): the query language, ingest bodies, the agent's record splitter
# (plain, Docker and CRI lines),
# the journal export reader, the syslog parser, the receivers' readers (syslog
# framing, Elasticsearch bulk, Loki push, OTLP), level and time detection,
# pattern mining, and both config files.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET=600] [TARGET ...]
#
# Installs cargo-fuzz when it is missing. A crash leaves its input under
# fuzz/artifacts/<target>/; turn it into a regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(query ingest records journal_export syslog receivers line_parse patterns aggregator_config agent_config)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s"
  mkdir -p "corpus/$target"
  # Built apart, unfiltered: a target that does not build fails the script.
  cargo +nightly fuzz build "$target"
  cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 |
    grep -E '^(stat::|#[0-9]+.*DONE|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)' || true
  if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
    echo "$target: crash inputs in fuzz/artifacts/$target" >&2
    exit 1
  fi
done
