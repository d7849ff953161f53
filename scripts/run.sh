#!/usr/bin/env bash
# The product's main job (README "Run"): build Synapse, boot a throwaway Samba AD DC on a loopback address, and
# walk the seed's AD API examples through the shipped plans with `synapse plan run` against it: create OU
# Synapse, create user mfox with the seed's body, get it by name/UPN/DOMAIN\name, create group FamousActors, add
# mfox to it, run the GetAllGroups custom search, show what bad input gets. The DC is stopped on exit.
# (When `synapse serve` lands, this script starts the server against the DC instead.)
set -euo pipefail
cd "$(dirname "$0")/.."

fixture=tests/fixtures/samba-dc.sh
"$fixture" install >&2
"$fixture" golden >&2
cargo build --release --locked
bin=$PWD/target/release/synapse

echo "== validating every shipped plan"
mapfile -t plans < <(find plans -name '*.yaml' | sort)
"$bin" plan validate "${plans[@]}" | tail -n 3

dcdir=$(mktemp -d /tmp/synapse-run-dc.XXXXXX)
rmdir "$dcdir"
stop_dc() { "$fixture" stop "$dcdir" >/dev/null 2>&1 || true; }
trap stop_dc EXIT
for attempt in 1 2 3 4 5; do
  ip=$("$fixture" free-ip)
  set +e
  out=$("$fixture" start "$dcdir" "$ip" 1800)
  rc=$?
  set -e
  [ "$rc" -eq 0 ] && break
  [ "$rc" -eq 3 ] || { echo "could not start the DC (exit $rc)" >&2; exit 1; }
done
DC_IP=$(printf '%s\n' "$out" | sed -n 's/^DC_IP=//p')
DC_BASE_DN=$(printf '%s\n' "$out" | sed -n 's/^DC_BASE_DN=//p')
DC_BIND_DN=$(printf '%s\n' "$out" | sed -n 's/^DC_BIND_DN=//p')
DC_PASSWORD=$(printf '%s\n' "$out" | sed -n 's/^DC_PASSWORD=//p')
echo "== throwaway AD DC up on $DC_IP (base $DC_BASE_DN)"

export SYNAPSE_AD_URL="ldaps://$DC_IP:636"
export SYNAPSE_AD_BIND_DN="$DC_BIND_DN"
export SYNAPSE_AD_PASSWORD="$DC_PASSWORD"
export SYNAPSE_AD_TLS_INSECURE=true   # the fixture's self-signed certificate has no SAN for its IP
export SYNAPSE_AD_ALIASES=SANDBOX
export SYNAPSE_LOG=error              # hides the per-run "TlsInsecure is set" warning: said once here instead
echo "   (TLS certificates are not verified for this throwaway DC: SYNAPSE_AD_TLS_INSECURE=true)"

ou="ou=Synapse,$DC_BASE_DN"
user="cn=mfox,$ou"
step() {
  local title=$1; shift
  echo
  echo "== $title"
  echo "   synapse plan run $*"
  set +e
  "$bin" plan run "$@" -o json > /tmp/synapse-run-step.json
  local rc=$?
  set -e
  # Print the statuses of the envelope (the AD API will answer with exactly this envelope).
  python3 - /tmp/synapse-run-step.json <<'PY' || cat /tmp/synapse-run-step.json
import json, sys
r = json.load(open(sys.argv[1]))
for a in r["Actions"]:
    env = a.get("ExitData") or {}
    for res in env.get("Results", []):
        for s in res["Statuses"]:
            print(f"   Status {s['Status']:>2}  Action {s['Action']:>3}  {s['Message']}")
        obj = res.get("User") or res.get("Group") or res.get("OrganizationalUnit") or res.get("SearchResults")
        if obj and "Results" in obj:
            for row in obj["Results"]:
                print("     ", row.get("DistinguishedName"))
        elif obj:
            print(f"      -> {obj.get('DistinguishedName')}  Sid={obj.get('Sid')}  Guid={obj.get('Guid')}")
print(f"   plan status: {r['Status']}")
PY
  echo "   exit code: $rc"
}

step "create OU Synapse" plans/CreateOrgUnit.yaml -p "identity=$ou" -p "description=Synapse demo OU"
step "create user mfox (the seed's body)" plans/CreateUser.yaml -p "identity=$user" \
  -p 'password=bi@02LL49_VWQ{b' -p givenname=Michael -p surname=Fox \
  -p 'description=American Actor, Back to the Future.' -p userprincipalname=mfox@sandbox.local \
  -p samaccountname=mfox -p 'displayname=Michael J. Fox' -p emailaddress=mfox@company.com \
  -p voicetelephonenumber=1-800-555-1212 -p employeeid=42 -p enabled=true \
  -p accountexpirationdate=2037-10-10T16:35:46Z -p 'homedirectory=C:\Temp' -p 'scriptpath=C:\Temp\Scripts' \
  -p passwordneverexpires=true -p homedrive=F: -p returnobjectproperties=false
for id in mfox mfox@sandbox.local 'SANDBOX\mfox'; do
  step "get user by $id" plans/GetUser.yaml -p "identity=$id" -p returnobjectproperties=false
done
step "create group FamousActors" plans/CreateGroup.yaml -p "identity=cn=FamousActors,$ou" -p returnobjectproperties=false
step "add mfox to FamousActors" plans/AddUserToGroup.yaml -p identity=mfox -p group=FamousActors -p returnobjects=false
step "custom search GetAllGroups for mfox" plans/GetAllGroups.yaml -p "distinguishedname=$user"
step "an injection attempt finds nothing" plans/GetUser.yaml -p 'identity=*)(objectClass=*' -p returnobjects=false
step "a weak password is refused and leaves nothing behind" plans/CreateUser.yaml -p "identity=cn=weak,$ou" -p password=abc
step "remove mfox from FamousActors" plans/RemoveUserFromGroup.yaml -p identity=mfox -p group=FamousActors -p returnobjects=false
step "delete mfox" plans/DeleteUser.yaml -p identity=mfox
echo
echo "Done. The DC at $DC_IP is stopped now. Try your own: export the SYNAPSE_AD_* variables above for any DC"
echo "and run e.g.: target/release/synapse plan run plans/GetUser.yaml -p identity=Administrator -o yaml"
