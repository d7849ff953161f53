#!/usr/bin/env bash
# The product's main job (README "Run"). Today the engine and CLI exist: build the release binary, validate
# every shipped plan, then run the example plans and show their results. Later issues make this boot a
# throwaway Samba AD DC on loopback and start `synapse serve` against it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
bin=target/release/synapse

echo "== validating every shipped plan"
mapfile -t plans < <(find plans -name '*.yaml' | sort)
"$bin" plan validate "${plans[@]}"

echo
echo "== plan help plans/examples/branching.yaml"
"$bin" plan help plans/examples/branching.yaml

echo
echo "== synapse plan run plans/examples/hello.yaml --param name=World -o yaml"
"$bin" plan run plans/examples/hello.yaml --param name=World -o yaml

echo
echo "== synapse plan run plans/examples/branching.yaml --param outcome=bad --verbose (takes the error branch; exit 1 expected)"
set +e
"$bin" plan run plans/examples/branching.yaml --param outcome=bad --verbose -o yaml >/dev/null
rc=$?
set -e
echo "exit code: $rc (1 = the plan ran and failed, as asked)"
[ "$rc" -eq 1 ]
