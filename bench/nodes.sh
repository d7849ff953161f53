#!/usr/bin/env bash
# EmptyHandler actions over NATS JetStream to 1 and 3 `synapse node` workers vs in process, in one run
# (examples/nodes_bench.rs; results in docs/performance.md "Node workers"). Needs nats-server
# (tests/fixtures/nats.sh install). Usage: bench/nodes.sh [ACTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
actions=${1:-5000}
cargo build --release --bin synapse --example nodes_bench >/dev/null
bin=${CARGO_TARGET_DIR:-target}/release
out=$(tests/fixtures/nats.sh start)
dir=$(sed -n 's/^NATS_DIR=//p' <<<"$out")
url=$(sed -n 's/^NATS_URL=//p' <<<"$out")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  tests/fixtures/nats.sh stop "$dir"
}
trap cleanup EXIT
for n in 1 3; do
  while [ "${#pids[@]}" -lt "$n" ]; do
    "$bin/synapse" node --nats "$url" --name "bench${#pids[@]}" --concurrency 256 2>/dev/null &
    pids+=($!)
  done
  "$bin/examples/nodes_bench" "$url" "$n" "$actions"
done
