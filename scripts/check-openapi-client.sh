#!/usr/bin/env bash
# The OpenAPI document must produce a working client: build Synapse, serve it on a free loopback port (no
# plans, no keys), fetch GET /openapi.json, generate a Python client with openapi-python-client in a temporary
# venv, install the client and import it. Fails on any generator error or warning. Needs PyPI (pip), so CI does
# not run it (docs/testing.md). The server is stopped by PID and the temp directory removed on exit.
#
#   scripts/check-openapi-client.sh                 # latest openapi-python-client
#   OPC_VERSION=0.29.1 scripts/check-openapi-client.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --bin synapse
bin=${CARGO_TARGET_DIR:-$PWD/target}/debug/synapse

work=$(mktemp -d /tmp/synapse-openapi-client.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/plans" "$work/data"
"$bin" serve --no-auth --listen "127.0.0.1:$port" --plans "$work/plans" --data "$work/data" \
  >"$work/serve.log" 2>&1 &
server_pid=$!

fetch() {
  python3 - "$1" "$2" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
EOF
}
for _ in $(seq 1 100); do
  fetch "http://127.0.0.1:$port/healthz" "$work/healthz.json" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; echo "synapse serve exited" >&2; exit 1; }
  sleep 0.1
done
fetch "http://127.0.0.1:$port/openapi.json" "$work/openapi.json"
kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
server_pid=""
echo "openapi.json: $(wc -c <"$work/openapi.json") bytes" >&2

python3 -m venv "$work/venv"
export PATH="$work/venv/bin:$PATH" # the generator's post hooks call ruff
pip install -q "openapi-python-client${OPC_VERSION:+==$OPC_VERSION}" ruff
echo "openapi-python-client $(openapi-python-client --version | awk '{print $NF}')" >&2

mkdir "$work/gen"
status=0
(cd "$work/gen" && openapi-python-client generate --path "$work/openapi.json") >"$work/generate.log" 2>&1 || status=$?
cat "$work/generate.log" >&2
if [ "$status" -ne 0 ] || grep -qiE 'warning|error|unsupported|skipping' "$work/generate.log"; then
  echo "openapi-python-client reported problems (exit $status)" >&2
  exit 1
fi

pip install -q "$work"/gen/*/
python3 - <<'EOF'
import synapse_controller_api_client as client
from synapse_controller_api_client.api.ad import ad_get, ad_create, ad_search, ad_custom_search
from synapse_controller_api_client.api.execute import start_sync_post, get_instance, list_plans
from synapse_controller_api_client.api.ops import healthz
from synapse_controller_api_client.models import AdEnvelope, Error, OutputType

assert sorted(t.value for t in OutputType) == ["json", "xml", "yaml"]
env = AdEnvelope.from_dict({"Results": [{"Statuses": [{"Status": 4, "Message": "User [x] Not Found.", "Action": 1}],
    "Type": 1, "Identity": "x", "User": None, "Group": None, "Computer": None, "OrganizationalUnit": None,
    "SearchResults": {"Results": [{"Path": "LDAP://CN=x", "DistinguishedName": "CN=x",
                                   "Properties": {"name": ["x"], "mail": None}}]}}]})
assert env.results[0].statuses[0].message == "User [x] Not Found."
err = Error.from_dict({"Error": {"Status": 400, "Message": "missing", "Problems": [{"Kind": "Missing", "Parameter": "name"}]}})
assert err.error.problems[0].parameter == "name"
print("client ok:", client.__name__)
EOF
