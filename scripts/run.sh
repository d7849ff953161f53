#!/usr/bin/env bash
# The product's main job (README "Run"): build Synapse, boot a throwaway Samba AD DC on a loopback address,
# start `synapse serve` against it with an API key, walk the seed's AD API examples over HTTP (create OU
# Synapse, create user mfox with the seed's body, get it by name/UPN/DN, create group FamousActors, add mfox to
# it, run the GetAllGroups custom search, show what bad input gets), print curl examples, and keep serving until
# Ctrl-C. `--once` stops after the walk. The server and the DC are stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

once=false
[ "${1:-}" = "--once" ] && once=true

fixture=tests/fixtures/samba-dc.sh
"$fixture" install >&2
"$fixture" golden >&2
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }
cargo build --release --locked
bin=$PWD/target/release/synapse

work=$(mktemp -d /tmp/synapse-run.XXXXXX)
dcdir="$work/dc"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; fi
  "$fixture" stop "$dcdir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

out=$("$fixture" start-any "$dcdir" 7200)
val() { printf '%s\n' "$out" | sed -n "s/^$1=//p"; }
DC_IP=$(val DC_IP); DC_BASE_DN=$(val DC_BASE_DN)
export SYNAPSE_AD_URL="ldaps://$DC_IP:636"
SYNAPSE_AD_BIND_DN=$(val DC_BIND_DN); export SYNAPSE_AD_BIND_DN
SYNAPSE_AD_PASSWORD=$(val DC_PASSWORD); export SYNAPSE_AD_PASSWORD
export SYNAPSE_AD_TLS_INSECURE=true   # the throwaway DC's self-signed certificate has no SAN for its IP
export SYNAPSE_AD_ALIASES=SANDBOX
echo "== throwaway AD DC on $DC_IP (base $DC_BASE_DN); TLS certificates are not verified for it"

port=${SYNAPSE_RUN_PORT:-20000}
base="http://127.0.0.1:$port"
KEY=$("$bin" token create --name demo --roles execute --data "$work/data" 2>/dev/null)
SYNAPSE_LOG=${SYNAPSE_LOG:-info} "$bin" serve --listen "127.0.0.1:$port" --plans plans --data "$work/data" \
  > "$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
echo "== synapse serve on $base (pid $server_pid), API key created with: synapse token create --name demo --roles execute"

enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
call() {
  local title=$1 method=$2 path=$3 body=${4:-}
  echo
  echo "== $title"
  echo "   curl -X $method $base$path${body:+ -H 'Content-Type: application/json' -d '$body'}"
  local args=(-sS -o "$work/resp.json" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $KEY")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  local code
  code=$(curl "${args[@]}" "$base$path")
  echo "   HTTP $code"
  python3 - "$work/resp.json" <<'PY' || head -c 600 "$work/resp.json"
import json, sys
env = json.load(open(sys.argv[1]))
for res in env.get("Results", []):
    for s in res["Statuses"]:
        print(f"   Status {s['Status']:>2}  Action {s['Action']:>3}  {s['Message']}")
    obj = res.get("User") or res.get("Group") or res.get("OrganizationalUnit") or res.get("SearchResults")
    if obj and "Results" in obj:
        for row in obj["Results"]:
            print("     ", row.get("DistinguishedName"))
    elif obj:
        print(f"      -> {obj.get('DistinguishedName')}  Sid={obj.get('Sid')}  Guid={obj.get('Guid')}")
if "Error" in env:
    print("  ", env["Error"])
PY
}

ou="ou=Synapse,$DC_BASE_DN"
user="cn=mfox,$ou"
call "create OU Synapse" POST "/ad/ou/$(enc "$ou")" '{"Description": "Synapse demo OU"}'
# The seed's body, as written there (unquoted keys: a YAML flow map).
seed_body='{
  Password: "bi@02LL49_VWQ{b",
  GivenName: "Michael",
  Surname: "Fox",
  Description: "American Actor, Back to the Future.",
  UserPrincipalName: "mfox@sandbox.local",
  SamAccountName: "mfox",
  DisplayName: "Michael J. Fox",
  EmailAddress: "mfox@company.com",
  VoiceTelephoneNumber: "1-800-555-1212",
  EmployeeId: "42",
  Enabled: true,
  AccountExpirationDate: "2037-10-10T16:35:46.0417954Z",
  SmartcardLogonRequired: false,
  DelegationPermitted: true,
  HomeDirectory: "C:\\Temp",
  ScriptPath: "C:\\Temp\\Scripts",
  PasswordNotRequired: false,
  PasswordNeverExpires: true,
  UserCannotChangePassword: false,
  AllowReversiblePasswordEncryption: false,
  HomeDrive: "F:"
}'
call "create user mfox (the seed's body)" POST "/ad/user/$(enc "$user")?returnobjectproperties=false" "$seed_body"
call "get user by name" GET "/ad/user/mfox?returnobjectproperties=false"
call "get user by UPN, with its groups" GET "/ad/user/mfox@sandbox.local?returnobjectproperties=false&returngroupmembership=true"
call "get user by DOMAIN\\name (the /{domain}/{identity} twin)" GET "/ad/user/SANDBOX/mfox?returnobjects=false"
call "create group FamousActors" POST "/ad/group/$(enc "cn=FamousActors,$ou")?returnobjectproperties=false" '{"Description": "Famous actors"}'
call "add mfox to FamousActors" POST "/ad/user/mfox/group/FamousActors?returnobjects=false"
call "custom search GetAllGroups" POST "/ad/search/GetAllGroups" "{\"distinguishedname\": \"$user\"}"
call "search" POST "/ad/search" "{\"Filter\": \"(objectClass=group)\", \"SearchBase\": \"$ou\", \"ReturnAttributes\": [\"cn\"]}"
call "an injection attempt finds nothing (404)" GET "/ad/user/$(enc '*)(objectClass=*')?returnobjects=false"
call "a missing custom-search parameter (400)" POST "/ad/search/GetAllGroups" '{}'
call "a weak password (400, nothing created)" POST "/ad/user/$(enc "cn=weak,$ou")" '{Password: "abc"}'

cat <<EOF

== Try it yourself (the server keeps running until Ctrl-C):
   export SYNAPSE_KEY=$KEY
   curl -H "Authorization: Bearer \$SYNAPSE_KEY" $base/ad/user/mfox
   curl -H "Authorization: Bearer \$SYNAPSE_KEY" "$base/ad/user/mfox?outputtype=yaml&returnobjectproperties=false"
   curl -H "Authorization: Bearer \$SYNAPSE_KEY" -X POST $base/ad/search/GetAllGroups -H 'Content-Type: application/json' -d '{"distinguishedname": "$user"}'
   curl -H "Authorization: Bearer \$SYNAPSE_KEY" $base/synapse/execute
   curl -H "Authorization: Bearer \$SYNAPSE_KEY" $base/synapse/execute/GetUser/help
   curl $base/healthz ; curl $base/metrics ; curl $base/openapi.json
EOF
if $once; then
  exit 0
fi
echo "(serving; Ctrl-C stops the server and the DC)"
wait "$server_pid"
