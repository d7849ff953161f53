#!/usr/bin/env bash
# DNS API record create/delete vs raw LDAP adds of the same dnsNode vs `samba-tool dns add`, and listing a large
# zone through the API (time, synapse's peak memory), in one run against one throwaway Samba AD DC.
#
#   bench/dns.sh
#
# 1. the DC fixture (tests/fixtures/samba-dc.sh install + golden; root) and `cargo build --release`;
# 2. a DC on a free 127.0.0.x (or the running one named by DC_ENV=FILE, KEY=VALUE lines of `samba-dc.sh start`);
# 3. `synapse serve --no-auth` on the repo's plans, pointed at the DC (SYNAPSE_AD_*), /healthz awaited;
# 4. three zones made through the API; then, each over N records (N=100):
#      API:         POST /dns/zones/{z}/records {Name, Type: A, Value, CreatePtr: false} then
#                   DELETE /dns/zones/{z}/records/{name}/A, sequential over one keep-alive connection
#                   (each create bumps the SOA serial: 4 LDAP operations, a node read, the serial read/modify, the add)
#      raw LDAP:    ldapadd/ldapdelete of the same dnsNode with the same 28-byte dnsRecord, one connection each
#                   (no serial bump: what a script writing LDAP directly would do)
#      samba-tool:  `samba-tool dns add` / `delete` per record (SAMBA_N records, default 20: one process each)
#      raw LDAP + serial: per record the same add and one modify of the zone's @ node (SOA serial + 1), in one
#                   ldapmodify (what a script must send to keep the serial right, as the API does)
#    and prints records/s and the ratio API : raw LDAP (goal >= 0.8x) and API : samba-tool;
# 5. a zone of LIST_N records (default 10000, written with one ldapadd), listed with
#    GET /dns/zones/{z}/records (time, records returned, synapse's VmHWM before and after).
# SYNAPSE_BIN=PATH uses that binary instead of building one.
# Stops synapse (by PID) and the DC (when it started one) on exit. Results to stdout, progress to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixture=$root/tests/fixtures/samba-dc.sh
readonly root fixture
readonly N=${N:-100}
readonly SAMBA_N=${SAMBA_N:-20}
readonly LIST_N=${LIST_N:-10000}

log() { printf 'dns bench: %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/synapse-bench-dns.XXXXXX")
dc_started=0
syn_pid=

cleanup() {
    local rc=$?
    if [[ -n $syn_pid ]]; then kill "$syn_pid" 2>/dev/null || true; wait "$syn_pid" 2>/dev/null || true; fi
    if ((dc_started)); then "$fixture" stop "$work/dc" || log "warning: stopping the DC failed"; fi
    rm -rf -- "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$root"
if [[ -z ${DC_ENV:-} ]]; then
    "$fixture" install
    "$fixture" golden
fi
bin=$(bench_synapse_bin)

if [[ -n ${DC_ENV:-} ]]; then
    env_file=$DC_ENV
else
    env_file=$work/dc.env
    dc_started=1
    "$fixture" start-any "$work/dc" 1800 >"$env_file"
fi
# shellcheck disable=SC1090
source "$env_file"
export KRB5_CONFIG=$DC_KRB5_CONF LDAPTLS_REQCERT=never

port=$(bench_free_port)
mkdir -p "$work/data"
(
    cd "$work"
    for v in $(env | grep -o '^SYNAPSE_[A-Z_]*'); do unset "$v"; done
    SYNAPSE_LOG=error SYNAPSE_AD_URL="ldaps://$DC_IP:636" SYNAPSE_AD_BIND_DN="$DC_BIND_DN" \
        SYNAPSE_AD_PASSWORD="$DC_PASSWORD" SYNAPSE_AD_TLS_INSECURE=true \
        exec "$bin" serve --no-auth --listen "127.0.0.1:$port" --plans "$root/plans" --data "$work/data"
) >"$work/serve.log" 2>&1 &
syn_pid=$!
bench_wait_healthz "$port"

log "measuring (N=$N, SAMBA_N=$SAMBA_N, LIST_N=$LIST_N)"
export N SAMBA_N LIST_N DC_IP DC_BASE_DN DC_BIND_DN DC_PASSWORD
PORT=$port SYN_PID=$syn_pid WORK=$work python3 - <<'PY'
import base64, http.client, json, os, random, subprocess, time

port = int(os.environ["PORT"]); pid = os.environ["SYN_PID"]
N = int(os.environ["N"]); SAMBA_N = int(os.environ["SAMBA_N"]); LIST_N = int(os.environ["LIST_N"])
work = os.environ["WORK"]; ip = os.environ["DC_IP"]; base = os.environ["DC_BASE_DN"]
bind = os.environ["DC_BIND_DN"]; pw = os.environ["DC_PASSWORD"]
tag = "%06x" % random.randrange(1 << 24)
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

def api(method, path, body=None, again=True):
    global conn
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={} if body is None else {"Content-Type": "application/json"})
        r = conn.getresponse(); data = r.read()
        return r.status, data
    except (BrokenPipeError, ConnectionError, http.client.HTTPException):
        # The server closed an idle keep-alive connection: one new connection, once.
        if not again:
            raise
        conn.close(); conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        return api(method, path, body, False)

def zone(name):
    st, data = api("POST", "/dns/zones", {"Name": name})
    assert st == 200, data
    return name

def hwm():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return line.split()[1] + " kB"

def blob(a, b):
    # DataLength 4, Type A, Version 5, Rank 0xF0, Flags 0, Serial 1, TTL 900 (BE), Reserved, TimeStamp, 10.200.a.b
    return (bytes([4, 0, 1, 0, 5, 0xF0, 0, 0, 1, 0, 0, 0]) + (900).to_bytes(4, "big")
            + bytes(8) + bytes([10, 200, a, b]))

def ldif_nodes(z, names):
    out = []
    for i, n in enumerate(names):
        out.append(f"dn: DC={n},DC={z},CN=MicrosoftDNS,DC=DomainDnsZones,{base}\nobjectClass: top\n"
                   f"objectClass: dnsNode\ndnsRecord:: {base64.b64encode(blob(i // 250 % 256, i % 250 + 1)).decode()}\n")
    return "\n".join(out)

def ldap(tool, text):
    p = subprocess.run([tool, "-x", "-H", f"ldaps://{ip}", "-D", bind, "-w", pw],
                       input=text.encode(), capture_output=True)
    assert p.returncode == 0, p.stderr.decode()

def samba(*args):
    p = subprocess.run(["samba-tool", "dns", *args, "-U", f"Administrator%{pw}"], capture_output=True)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()

rows = []
# API
z = zone(f"bench-api-{tag}.test")
t = time.perf_counter()
for i in range(N):
    st, d = api("POST", f"/dns/zones/{z}/records",
                {"Name": f"h{i}", "Type": "A", "Value": f"10.200.{i // 250}.{i % 250 + 1}", "CreatePtr": False})
    assert st == 200, d
api_create = time.perf_counter() - t
t = time.perf_counter()
for i in range(N):
    st, d = api("DELETE", f"/dns/zones/{z}/records/h{i}/A")
    assert st == 200, d
api_delete = time.perf_counter() - t
# raw LDAP
z2 = zone(f"bench-raw-{tag}.test")
names = [f"h{i}" for i in range(N)]
t = time.perf_counter(); ldap("ldapadd", ldif_nodes(z2, names)); raw_create = time.perf_counter() - t
t = time.perf_counter()
ldap("ldapdelete", "\n".join(f"DC={n},DC={z2},CN=MicrosoftDNS,DC=DomainDnsZones,{base}" for n in names) + "\n")
raw_delete = time.perf_counter() - t
# raw LDAP with the serial bump the API does (what a correct script must send): per record, the add and one
# modify of the zone's @ node replacing the SOA value with serial + 1 (header serial LE at 8, SOA serial BE at 24).
z5 = zone(f"bench-rawsoa-{tag}.test")
apex = f"DC=@,DC={z5},CN=MicrosoftDNS,DC=DomainDnsZones,{base}"
out = subprocess.run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", f"ldaps://{ip}", "-D", bind, "-w", pw,
                      "-b", apex, "-s", "base", "dnsRecord"], capture_output=True, check=True).stdout.decode()
soa = next(b for b in (base64.b64decode(l.split(":: ", 1)[1]) for l in out.splitlines()
                       if l.startswith("dnsRecord:: ")) if int.from_bytes(b[2:4], "little") == 6)
serial0 = int.from_bytes(soa[24:28], "big")

def soa_at(n):
    if n == serial0:
        return base64.b64encode(soa).decode()
    b = bytearray(soa); b[8:12] = n.to_bytes(4, "little"); b[24:28] = n.to_bytes(4, "big")
    return base64.b64encode(bytes(b)).decode()

chunks = []
for i, n in enumerate(names):
    chunks.append(ldif_nodes(z5, [n]).replace("\nobjectClass: top", "\nchangetype: add\nobjectClass: top", 1))
    chunks.append(f"dn: {apex}\nchangetype: modify\ndelete: dnsRecord\ndnsRecord:: {soa_at(serial0 + i)}\n-\n"
                  f"add: dnsRecord\ndnsRecord:: {soa_at(serial0 + i + 1)}\n-\n")
t = time.perf_counter(); ldap("ldapmodify", "\n".join(chunks)); rawsoa_create = time.perf_counter() - t
# samba-tool
z3 = zone(f"bench-tool-{tag}.test")
t = time.perf_counter()
for i in range(SAMBA_N):
    samba("add", ip, z3, f"h{i}", "A", f"10.200.0.{i + 1}")
tool_create = time.perf_counter() - t
t = time.perf_counter()
for i in range(SAMBA_N):
    samba("delete", ip, z3, f"h{i}", "A", f"10.200.0.{i + 1}")
tool_delete = time.perf_counter() - t

def rate(n, s): return n / s
print("| Path | creates/s | deletes/s |\n|---|---|---|")
print(f"| API (POST/DELETE /dns/zones/{{z}}/records, serial bumped) | {rate(N, api_create):.1f} | {rate(N, api_delete):.1f} |")
print(f"| raw LDAP (ldapadd/ldapdelete of the same dnsNode, no serial bump) | {rate(N, raw_create):.1f} | {rate(N, raw_delete):.1f} |")
print(f"| raw LDAP add + SOA serial modify per record (one connection) | {rate(N, rawsoa_create):.1f} | |")
print(f"| samba-tool dns add/delete | {rate(SAMBA_N, tool_create):.1f} | {rate(SAMBA_N, tool_delete):.1f} |")
print()
print(f"API : raw LDAP = {raw_create / api_create:.2f}x (create), {raw_delete / api_delete:.2f}x (delete); goal >= 0.8x")
print(f"API : raw LDAP add + serial modify = {rawsoa_create / api_create:.2f}x (create)")
print(f"API : samba-tool = {rate(N, api_create) / rate(SAMBA_N, tool_create):.1f}x (create), "
      f"{rate(N, api_delete) / rate(SAMBA_N, tool_delete):.1f}x (delete)")

# Listing a large zone
z4 = zone(f"bench-list-{tag}.test")
t = time.perf_counter(); ldap("ldapadd", ldif_nodes(z4, [f"n{i}" for i in range(LIST_N)]))
fill = time.perf_counter() - t
before = hwm()
t = time.perf_counter()
st, d = api("GET", f"/dns/zones/{z4}/records?type=A")
listing = time.perf_counter() - t
assert st == 200, d[:500]
count = len(json.loads(d)["Results"][0]["Records"])
after = hwm()
print()
print(f"Listing a zone of {LIST_N} A records (filled by ldapadd in {fill:.1f} s): GET /dns/zones/{{z}}/records?type=A "
      f"{listing:.2f} s, {count} records, {len(d) / 1e6:.1f} MB of JSON; synapse VmHWM {before} before, {after} after")
for zz in (z, z2, z3, z4, z5):
    api("DELETE", f"/dns/zones/{zz}")
PY
