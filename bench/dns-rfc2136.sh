#!/usr/bin/env bash
# The DNS API on an RFC 2136 zone (BIND) against `nsupdate -y` of the same records (the tool an admin would
# otherwise script), in one run against one throwaway named (tests/fixtures/bind9.sh). No DC needed.
#
#   bench/dns-rfc2136.sh
#
# 1. bind9/dnsutils (tests/fixtures/bind9.sh install) and `cargo build --release` (SYNAPSE_BIN=PATH: that binary);
# 2. named on 127.0.0.1 and a free port (forward zone rfc.test, TSIG key hmac-sha256);
# 3. `synapse serve --no-auth` configured with SYNAPSE_DNS_* for that server, /healthz awaited;
# 4. over N records each (N=200):
#      API sequential:  POST /dns/zones/rfc.test/records {Name, Type: A, Value, CreatePtr: false}, then DELETE
#                       .../records/{name}/A, one keep-alive connection (each create: a signed ANY query and a
#                       signed UPDATE with a prerequisite; each delete: a query and an UPDATE)
#      API parallel:    the same with C=8 clients at once
#      nsupdate:        `nsupdate -y hmac-sha256:KEY:SECRET` per record (one process, one signed UPDATE each: what
#                       a script would do), add then delete
#      nsupdate batch:  one nsupdate process sending N UPDATEs (`send` after each record): the wire alone
#    every record checked afterwards with a signed AXFR (dig); prints records/s and the ratios API : nsupdate.
# Stops synapse and named (by PID) on exit. Results to stdout, progress to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixture=$root/tests/fixtures/bind9.sh
readonly root fixture
readonly N=${N:-200}
readonly C=${C:-8}

log() { printf 'dns-rfc2136 bench: %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/synapse-bench-rfc2136.XXXXXX")
bind_dir=$(mktemp -u /tmp/synapse-bind.XXXXXX)
syn_pid=

cleanup() {
    local rc=$?
    if [[ -n $syn_pid ]]; then kill "$syn_pid" 2>/dev/null || true; wait "$syn_pid" 2>/dev/null || true; fi
    "$fixture" stop "$bind_dir" >/dev/null 2>&1 || true
    rm -rf -- "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$root"
"$fixture" install >/dev/null
bin=$(bench_synapse_bin)

for _ in 1 2 3 4 5; do
    rc=0
    "$fixture" start "$bind_dir" 127.0.0.1 "$(bench_free_port)" >"$work/bind.env" || rc=$?
    [[ $rc == 3 ]] || break
done
[[ $rc == 0 ]] || { log "named did not start"; exit 1; }
# shellcheck disable=SC1091
source "$work/bind.env"

port=$(bench_free_port)
mkdir -p "$work/data"
(
    cd "$work"
    for v in $(env | grep -o '^SYNAPSE_[A-Z_]*'); do unset "$v"; done
    SYNAPSE_LOG=error SYNAPSE_DNS_NAME=bench SYNAPSE_DNS_ADDRESS="$BIND_ADDRESS:$BIND_PORT" \
        SYNAPSE_DNS_ZONES="$BIND_ZONE,$BIND_REVERSE_ZONE" SYNAPSE_DNS_TSIG_KEY_NAME="$BIND_KEY_NAME" \
        SYNAPSE_DNS_TSIG_SECRET="$BIND_KEY_SECRET" \
        exec "$bin" serve --no-auth --listen "127.0.0.1:$port" --plans "$root/plans" --data "$work/data"
) >"$work/serve.log" 2>&1 &
syn_pid=$!
bench_wait_healthz "$port"

log "measuring (N=$N, C=$C)"
export N C BIND_ADDRESS BIND_PORT BIND_ZONE BIND_KEY_NAME BIND_KEY_SECRET
PORT=$port python3 - <<'PY'
import http.client, json, os, subprocess, threading, time

port = int(os.environ["PORT"]); N = int(os.environ["N"]); C = int(os.environ["C"])
ip = os.environ["BIND_ADDRESS"]; bport = os.environ["BIND_PORT"]; zone = os.environ["BIND_ZONE"]
key = f"hmac-sha256:{os.environ['BIND_KEY_NAME']}:{os.environ['BIND_KEY_SECRET']}"

def client():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=600)

def api(conn, method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={} if body is None else {"Content-Type": "application/json"})
    r = conn.getresponse(); data = r.read()
    assert r.status == 200, (method, path, r.status, data[:300])

def axfr():
    out = subprocess.run(["dig", f"@{ip}", "-p", bport, "-y", key, zone, "AXFR", "+noall", "+answer"],
                         capture_output=True, text=True, check=True).stdout
    return {l.split()[0] for l in out.splitlines() if len(l.split()) > 4 and l.split()[3] == "A"}

def expect(prefix, present):
    names = axfr()
    for i in range(N):
        assert (f"{prefix}{i}.{zone}." in names) == present, (prefix, i, present)

def value(i): return f"10.201.{i // 250}.{i % 250 + 1}"

def api_seq(prefix):
    conn = client()
    t = time.perf_counter()
    for i in range(N):
        api(conn, "POST", f"/dns/zones/{zone}/records",
            {"Name": f"{prefix}{i}", "Type": "A", "Value": value(i), "CreatePtr": False})
    c = time.perf_counter() - t
    expect(prefix, True)
    t = time.perf_counter()
    for i in range(N):
        api(conn, "DELETE", f"/dns/zones/{zone}/records/{prefix}{i}/A")
    d = time.perf_counter() - t
    expect(prefix, False)
    return c, d

def api_par(prefix):
    def run(kind, k):
        conn = client()
        for i in range(k, N, C):
            if kind == "c":
                api(conn, "POST", f"/dns/zones/{zone}/records",
                    {"Name": f"{prefix}{i}", "Type": "A", "Value": value(i), "CreatePtr": False})
            else:
                api(conn, "DELETE", f"/dns/zones/{zone}/records/{prefix}{i}/A")
    out = []
    for kind in ("c", "d"):
        ts = [threading.Thread(target=run, args=(kind, k)) for k in range(C)]
        t = time.perf_counter()
        for th in ts: th.start()
        for th in ts: th.join()
        out.append(time.perf_counter() - t)
        expect(prefix, kind == "c")
    return out[0], out[1]

def nsupdate(script):
    subprocess.run(["nsupdate", "-y", key], input=script, text=True, check=True, capture_output=True)

def ns_each(prefix):
    head = f"server {ip} {bport}\nzone {zone}\n"
    t = time.perf_counter()
    for i in range(N):
        nsupdate(head + f"update add {prefix}{i}.{zone} 900 A {value(i)}\nsend\n")
    c = time.perf_counter() - t
    expect(prefix, True)
    t = time.perf_counter()
    for i in range(N):
        nsupdate(head + f"update delete {prefix}{i}.{zone} A {value(i)}\nsend\n")
    d = time.perf_counter() - t
    expect(prefix, False)
    return c, d

def ns_batch(prefix):
    head = f"server {ip} {bport}\nzone {zone}\n"
    t = time.perf_counter()
    nsupdate(head + "".join(f"update add {prefix}{i}.{zone} 900 A {value(i)}\nsend\n" for i in range(N)))
    c = time.perf_counter() - t
    expect(prefix, True)
    t = time.perf_counter()
    nsupdate(head + "".join(f"update delete {prefix}{i}.{zone} A {value(i)}\nsend\n" for i in range(N)))
    d = time.perf_counter() - t
    expect(prefix, False)
    return c, d

res = {
    "API sequential (one client)": api_seq("s"),
    f"API parallel ({C} clients)": api_par("p"),
    "nsupdate -y, one process per record": ns_each("n"),
    "nsupdate -y, one process, one UPDATE per record": ns_batch("b"),
}
print(f"| Path (N={N}) | creates/s | deletes/s |\n|---|---|---|")
for k, (c, d) in res.items():
    print(f"| {k} | {N / c:.1f} | {N / d:.1f} |")
api_c, api_d = res["API sequential (one client)"]
par_c, par_d = res[f"API parallel ({C} clients)"]
ns_c, ns_d = res["nsupdate -y, one process per record"]
b_c, b_d = res["nsupdate -y, one process, one UPDATE per record"]
print()
print(f"API sequential : nsupdate per record = {ns_c / api_c:.2f}x (create), {ns_d / api_d:.2f}x (delete)")
print(f"API parallel   : nsupdate per record = {ns_c / par_c:.2f}x (create), {ns_d / par_d:.2f}x (delete)")
print(f"API sequential : nsupdate batch      = {b_c / api_c:.2f}x (create), {b_d / api_d:.2f}x (delete)")
PY
