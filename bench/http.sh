#!/usr/bin/env bash
# HTTP API throughput and latency of `synapse serve`, next to the raw ldap3 lookup rate, in one run.
#
#   bench/http.sh
#
# What it does (everything on loopback, every load run bounded):
#  1. installs wrk from Debian if missing, the DC fixture (tests/fixtures/samba-dc.sh install + golden; root);
#  2. builds `cargo build --release` and the raw ldap3 tool (bench/ldap-raw, its own crate);
#  3. writes a temporary plans directory: an Empty plan (one action, `Handler: {Type: Empty}`) plus plans/;
#  4. starts a throwaway DC on a free 127.0.0.x, creates a test user with `synapse plan run plans/CreateUser.yaml`;
#  5. starts `synapse serve --no-auth --listen 127.0.0.1:PORT` against it (SYNAPSE_AD_*; SYNAPSE_LOG=error),
#     data directory on disk (under TMPDIR), and waits for /healthz;
#  6. measures with wrk, each run DURATION s after a WARMUP s warm-up:
#       GET /healthz                                   (no plan: the HTTP stack alone)
#       GET /synapse/execute/Empty/start/sync          (the goal: >= 10,000 req/s on 2 cores), CONNS and 1 conn
#       GET /synapse/execute/Empty/start               (async: the same start, without waiting for the result)
#       GET /ad/user/<sAMAccountName>?returnobjectproperties=false, GET /ad/user/<DN>?..., CONNS and 1 conn
#       GET /ad/user/<sAMAccountName> (every attribute) at each of AD_CONNS connections (1, 8, 64)
#  7. measures raw ldap3 (bench/ldap-raw): the handler's exact searches, 1 connection sequential and
#     RAW_CONNS connections, and the sAMAccountName search at each of AD_CONNS connections, DURATION s each
#     after WARMUP s;
#  8. restarts synapse with its data directory on /dev/shm (tmpfs) and measures the Empty sync call again, to
#     show what the store's durable writes cost (STORE_COMPARE=0 skips it);
#  9. prints a markdown table, the API/raw ratios (throughput and p99 at each of AD_CONNS connections), the
#     goals with PASS/MISS (information only: exit 0 either way), and the synapse process's RSS before and
#     after the load.
#
# Each row also shows where the machine's CPU went during the measured seconds, in cores (of nproc):
# synapse, the DC (samba's process group), the load client (wrk or ldap-raw) and "other" (everything else on
# the machine: a concurrent build or test run makes the numbers meaningless, so the bench first waits up to
# QUIET_WAIT s for the machine to be idle and warns when "other" is large).
#
# Stops synapse (by PID) and the DC on exit, whatever happens; the DC also stops itself after 1800 s.
# Tunables (environment): DURATION=10 WARMUP=2 CONNS=32 THREADS=2 RAW_CONNS=8 AD_CONNS='1 8 64' STORE_COMPARE=1
# QUIET_WAIT=30
# KEEP_LOGS=DIR (copy wrk outputs and the server log there). Results go to stdout, progress to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixture=$root/tests/fixtures/samba-dc.sh
readonly root fixture
readonly DURATION=${DURATION:-10}
readonly WARMUP=${WARMUP:-2}
readonly CONNS=${CONNS:-32}
readonly THREADS=${THREADS:-2}
readonly RAW_CONNS=${RAW_CONNS:-8}
read -r -a AD_CONNS <<<"${AD_CONNS:-1 8 64}"
readonly AD_CONNS
readonly STORE_COMPARE=${STORE_COMPARE:-1}
readonly QUIET_WAIT=${QUIET_WAIT:-30}
readonly DC_MAXRUN=1800
readonly START_ATTEMPTS=5
readonly GOAL_SYNC_RPS=10000
readonly GOAL_AD_OVERHEAD_US=1000
# API/raw at 8 connections: throughput ratio at least this, p99 at most this many times raw's.
readonly GOAL_RATIO_RPS=0.8
readonly GOAL_RATIO_P99=2

log() { printf 'http bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/synapse-bench-http.XXXXXX")
shm_data=
dc_dir=$work/dc
env_file=$work/dc.env
logs=$work/logs
mkdir -p "$logs"
dc_started=0
syn_pid=

stop_synapse() {
    [[ -n $syn_pid ]] || return 0
    if kill -0 "$syn_pid" 2>/dev/null; then
        log "stopping synapse (pid $syn_pid)"
        kill -TERM "$syn_pid" 2>/dev/null || true
        local i
        for ((i = 0; i < 150; i++)); do
            kill -0 "$syn_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$syn_pid" 2>/dev/null; then
            log "synapse (pid $syn_pid) did not stop in 15 s: KILL"
            kill -KILL "$syn_pid" 2>/dev/null || true
        fi
    fi
    wait "$syn_pid" 2>/dev/null || true
    syn_pid=
}

cleanup() {
    local rc=$?
    stop_synapse
    if ((dc_started)); then
        log "stopping the DC in $dc_dir"
        "$fixture" stop "$dc_dir" || log "warning: samba-dc.sh stop $dc_dir failed"
    fi
    if [[ -n ${KEEP_LOGS:-} ]]; then
        if ! { mkdir -p "$KEEP_LOGS" && cp -r "$logs"/. "$KEEP_LOGS"/; }; then
            log "warning: could not copy the logs to $KEEP_LOGS"
        fi
    fi
    [[ -z $shm_data ]] || rm -rf -- "$shm_data"
    rm -rf -- "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$root"

# 1. Tools and the fixture (idempotent; fast when already done).
if ! command -v wrk >/dev/null; then
    log "installing wrk"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >&2 ||
        { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >&2; }
fi
for t in curl jq ss; do
    command -v "$t" >/dev/null || die "$t is required"
done
"$fixture" install
"$fixture" golden

# 2. Builds, before the DC starts.
log "building synapse (release)"
cargo build --release >&2
bin=$root/target/release/synapse
log "building the raw ldap3 tool (bench/ldap-raw)"
# Its own workspace; seeded with the product's lock file so it uses the same ldap3/rustls/tokio versions.
[[ -f $root/bench/ldap-raw/Cargo.lock ]] || cp "$root/Cargo.lock" "$root/bench/ldap-raw/Cargo.lock"
CARGO_TARGET_DIR=$root/target cargo build --release \
    --manifest-path "$root/bench/ldap-raw/Cargo.toml" >&2
raw_bin=$root/target/release/synapse-bench-ldap-raw

# 3. Plans: the repo's plus an Empty plan.
plans=$work/plans
mkdir -p "$plans"
cp "$root"/plans/*.yaml "$plans"/
cat >"$plans/Empty.yaml" <<'EOF'
Name: Empty
Description: One action that does nothing (bench/http.sh).
Actions:
- Name: nothing
  Handler: {Type: Empty}
EOF
"$bin" plan validate "$plans/Empty.yaml" >&2

# 4. A DC on a free loopback address (start exits 3 when another DC took the address first).
log "starting a DC on a free loopback address"
dc_started=1
# (dc_started stays 1 on failure: stopping a DC that never came up is harmless.)
DC_START_ATTEMPTS=$START_ATTEMPTS "$fixture" start-any "$dc_dir" "$DC_MAXRUN" >"$env_file" || {
    echo "samba-dc.sh start-any failed" >&2
    exit 1
}

dcvar() { sed -n "s/^$1=//p" "$env_file" | head -n1; }
base_dn=$(dcvar DC_BASE_DN)
ip=$(dcvar DC_IP)
SYNAPSE_AD_URL="ldaps://$ip:636"
SYNAPSE_AD_BIND_DN=$(dcvar DC_BIND_DN)
SYNAPSE_AD_PASSWORD=$(dcvar DC_PASSWORD)
SYNAPSE_AD_TLS_INSECURE=true
SYNAPSE_LOG=error
export SYNAPSE_AD_URL SYNAPSE_AD_BIND_DN SYNAPSE_AD_PASSWORD SYNAPSE_AD_TLS_INSECURE SYNAPSE_LOG

sam=httpbench
user_dn="cn=$sam,cn=Users,$base_dn"
log "creating the test user $user_dn"
"$bin" plan run "$root/plans/CreateUser.yaml" -p "identity=$user_dn" -p "samaccountname=$sam" \
    -p "givenname=Http" -p "surname=Bench" -p "displayname=Http Bench" \
    -p "description=bench/http.sh test user" -p "emailaddress=$sam@example.invalid" \
    >"$logs/create-user.json" || die "creating the test user failed: $(head -c 2000 "$logs/create-user.json")"

# 5. synapse serve.
free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Htln "sport = :$p" | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# start_synapse DATA_DIR LOG_NAME: starts synapse in the background (syn_pid, url) and waits for /healthz.
start_synapse() {
    local data=$1 name=$2 port
    port=$(free_port) || die "no free port"
    url="http://127.0.0.1:$port"
    log "starting synapse on $url (data $data)"
    # From $work, so that no synapse.yaml in the caller's directory is read.
    (cd "$work" && exec "$bin" serve --no-auth --listen "127.0.0.1:$port" --plans "$plans" --data "$data") \
        >"$logs/$name.out" 2>&1 &
    syn_pid=$!
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$syn_pid" 2>/dev/null || die "synapse exited: $(tail -n 20 "$logs/$name.out")"
        curl -fsS -o /dev/null "$url/healthz" 2>/dev/null && return 0
        sleep 0.1
    done
    die "synapse did not answer /healthz in 30 s"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$syn_pid/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$syn_pid/status"; }

start_synapse "$work/data" synapse

# Every measured URL must answer as expected once, or the numbers would measure errors.
check() {
    local path=$1 want=$2 code
    code=$(curl -sS -o "$logs/check.body" -w '%{http_code}' "$url$path")
    [[ $code == "$want" ]] || die "GET $path: HTTP $code, expected $want: $(head -c 1000 "$logs/check.body")"
}
by_sam="/ad/user/$sam?returnobjectproperties=false"
by_dn="/ad/user/$(jq -rn --arg s "$user_dn" '$s|@uri')?returnobjectproperties=false"
check /healthz 200
check /synapse/execute/Empty/start/sync 200
jq -e '.Status == "Complete"' "$logs/check.body" >/dev/null || die "Empty sync did not complete: $(cat "$logs/check.body")"
check /synapse/execute/Empty/start 202
check "$by_sam" 200
jq -e --arg dn "$user_dn" '.Results[0].User.DistinguishedName // .Results[0].User.distinguishedName | ascii_downcase == ($dn|ascii_downcase)' \
    "$logs/check.body" >/dev/null || die "GET $by_sam did not return the user: $(head -c 1000 "$logs/check.body")"
check "$by_dn" 200

# 6. Load runs. Results: name|conns|requests|rps|p50_us|p99_us|errors|non2xx|cpu (synapse/DC/client/other)
results=()
hz=$(getconf CLK_TCK)
dc_pgid=$(dcvar DC_PID)
# Busy jiffies of the whole machine (user+nice+system+irq+softirq+steal).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# utime+stime of one process (0 when it is gone).
pid_ticks() {
    local s
    if [[ -z ${1:-} ]] || ! read -r s <"/proc/$1/stat" 2>/dev/null; then
        echo 0
        return
    fi
    s=${s##*) }
    # shellcheck disable=SC2086 # split the stat fields on purpose
    set -- $s
    echo $((${12} + ${13}))
}
# utime+stime of every process in a process group (samba runs in its own group, DC_PID its leader).
pgrp_ticks() {
    local g=$1 f s sum=0
    for f in /proc/[0-9]*/stat; do
        read -r s <"$f" 2>/dev/null || continue
        s=${s##*) }
        # shellcheck disable=SC2086 # split the stat fields on purpose
        set -- $s
        [[ $3 == "$g" ]] && sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}
# User+system time of this shell's finished children (the load client), in jiffies. `times` must run in
# this shell, not in a command substitution (a forked subshell has no finished children of its own), so
# callers run `times >"$work/times"` first and this reads the file.
children_from_file() {
    awk -v hz="$hz" 'NR == 2 {
        n = 0
        for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
        printf "%d", n * hz }' "$work/times"
}
declare -a cpu0
cpu_mark() {
    times >"$work/times"
    cpu0=("$(machine_ticks)" "$(pid_ticks "$syn_pid")" "$(pgrp_ticks "$dc_pgid")" "$(children_from_file)" "$(date +%s%N)")
}
# Prints "synapse/DC/client/other" in cores since cpu_mark. Run `times >"$work/times"` in this shell
# right before `$(cpu_since)`.
cpu_since() {
    local m s d c t
    c=$(children_from_file)
    m=$(machine_ticks) s=$(pid_ticks "$syn_pid") d=$(pgrp_ticks "$dc_pgid") t=$(date +%s%N)
    awk -v hz="$hz" -v dt="$(((t - cpu0[4]) / 1000000))" -v m=$((m - cpu0[0])) -v s=$((s - cpu0[1])) \
        -v d=$((d - cpu0[2])) -v c=$((c - cpu0[3])) 'BEGIN {
        k = hz * dt / 1000; o = m - s - d - c; if (o < 0) o = 0
        printf "%.2f/%.2f/%.2f/%.2f", s / k, d / k, c / k, o / k }'
}
# Waits (up to QUIET_WAIT s) until the machine is idle: less than 0.25 cores busy over one second.
wait_quiet() {
    local deadline=$((SECONDS + QUIET_WAIT)) a b
    while :; do
        a=$(machine_ticks)
        sleep 1
        b=$(machine_ticks)
        if (((b - a) * 4 < hz)); then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            log "warning: the machine is still busy ($(awk -v x=$((b - a)) -v hz="$hz" 'BEGIN { printf "%.2f", x / hz }') cores) after ${QUIET_WAIT}s: measuring anyway, see the 'other' CPU column"
            return 0
        fi
    done
}

# "SUM COUNT" of the store writer's batch-size histogram (records per commit), "0 0" without it.
batch_metric() {
    curl -fsS "$url/metrics" 2>/dev/null | awk '
        $1 == "synapse_store_batch_records_sum" { s = $2 } $1 == "synapse_store_batch_records_count" { c = $2 }
        END { printf "%d %d", s, c }' || echo "0 0"
}

# load NAME CONNS PATH
load() {
    local name=$1 c=$2 path=$3 t=$THREADS out line cpu b0 b1 batch
    ((t <= c)) || t=$c
    wait_quiet
    log "wrk $name: -t$t -c$c, ${WARMUP}s warm-up + ${DURATION}s"
    timeout $((WARMUP + 30)) wrk -t"$t" -c"$c" -d"${WARMUP}s" "$url$path" >/dev/null
    out=$logs/wrk-$name-c$c.txt
    b0=$(batch_metric)
    cpu_mark
    timeout $((DURATION + 30)) wrk -t"$t" -c"$c" -d"${DURATION}s" --latency -s "$root/bench/http-report.lua" \
        "$url$path" >"$out"
    times >"$work/times"
    cpu=$(cpu_since)
    b1=$(batch_metric)
    # Store commits during the run and the mean records per commit (the warm-up's tail may add a few).
    batch=$(awk -v a="$b0" -v b="$b1" 'BEGIN { split(a, x, " "); split(b, y, " "); n = y[2] - x[2]
        if (n > 0) printf "%d (%.1f)", n, (y[1] - x[1]) / n; else printf "—" }')
    line=$(grep '^RESULT ' "$out") || die "wrk printed no RESULT line: $(cat "$out")"
    results+=("$name|$c|$(kv requests "$line")|$(kv rps "$line")|$(kv p50_us "$line")|$(kv p99_us "$line")|$(kv errors "$line")|$(kv non2xx "$line")|$cpu|$batch")
}
kv() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" $2"; }

# Each group on a fresh store: the Empty runs leave about a million instance records behind, which would
# otherwise weigh on the AD rows. memory: "name before after peak store" per server.
memory=()
note_memory() { memory+=("$1 $2 $(rss_kb) $(hwm_kb) $(du -sb "$3" | cut -f1)"); }

rss0=$(rss_kb)
load healthz "$CONNS" /healthz
load empty-sync "$CONNS" /synapse/execute/Empty/start/sync
load empty-sync 1 /synapse/execute/Empty/start/sync
load empty-async "$CONNS" /synapse/execute/Empty/start
note_memory "Empty and /healthz runs, store on disk" "$rss0" "$work/data"
stop_synapse

start_synapse "$work/data-ad" synapse-ad
rss0=$(rss_kb)
load ad-get-sam "$CONNS" "$by_sam"
load ad-get-sam 1 "$by_sam"
load ad-get-dn "$CONNS" "$by_dn"
load ad-get-dn 1 "$by_dn"
for c in "${AD_CONNS[@]}"; do
    load ad-get-sam-all "$c" "/ad/user/$sam"
done
note_memory "AD runs, store on disk" "$rss0" "$work/data-ad"
stop_synapse

# 7. Raw ldap3, same DC, same run (its own warm-up inside, WARMUP s per measurement, untimed).
for m in dn-seq sam-seq dn-conc; do
    c=1
    [[ $m != dn-conc ]] || c=$RAW_CONNS
    wait_quiet
    log "raw ldap3 $m: $c connection(s), ${WARMUP}s warm-up + ${DURATION}s"
    cpu_mark
    LDAP_RAW_PASSWORD=$SYNAPSE_AD_PASSWORD timeout $((WARMUP + DURATION + 60)) \
        "$raw_bin" "$SYNAPSE_AD_URL" "$SYNAPSE_AD_BIND_DN" "$base_dn" "$user_dn" "$sam" "$DURATION" "$WARMUP" \
        "$c" "$m" >"$logs/raw-$m.txt"
    # The warm-up is inside the measured interval here; the CPU split is still representative.
    times >"$work/times"
    cpu=$(cpu_since)
    line=$(grep '^RAW ' "$logs/raw-$m.txt") || die "ldap-raw printed no RAW line"
    results+=("raw-$m|$c|$(kv ops "$line")|$(kv rps "$line")|$(kv p50_us "$line")|$(kv p99_us "$line")|0|0|$cpu|—")
done

# The sAMAccountName search at each of AD_CONNS connections (1: sequential), for the API/raw ratios.
for c in "${AD_CONNS[@]}"; do
    m=sam-conc
    ((c > 1)) || m=sam-seq
    wait_quiet
    log "raw ldap3 $m: $c connection(s), ${WARMUP}s warm-up + ${DURATION}s"
    cpu_mark
    LDAP_RAW_PASSWORD=$SYNAPSE_AD_PASSWORD timeout $((WARMUP + DURATION + 60)) \
        "$raw_bin" "$SYNAPSE_AD_URL" "$SYNAPSE_AD_BIND_DN" "$base_dn" "$user_dn" "$sam" "$DURATION" "$WARMUP" \
        "$c" "$m" >"$logs/raw-$m-$c.txt"
    times >"$work/times"
    cpu=$(cpu_since)
    line=$(grep '^RAW ' "$logs/raw-$m-$c.txt") || die "ldap-raw printed no RAW line"
    results+=("raw-sam-all|$c|$(kv ops "$line")|$(kv rps "$line")|$(kv p50_us "$line")|$(kv p99_us "$line")|0|0|$cpu|—")
done

# 8. The store on tmpfs: same Empty sync call, data directory on /dev/shm.
if ((STORE_COMPARE)); then
    shm_data=$(mktemp -d /dev/shm/synapse-bench-http.XXXXXX)
    start_synapse "$shm_data" synapse-shm
    rss0=$(rss_kb)
    load empty-sync-tmpfs "$CONNS" /synapse/execute/Empty/start/sync
    load empty-async-tmpfs "$CONNS" /synapse/execute/Empty/start
    note_memory "Empty runs, store on tmpfs" "$rss0" "$shm_data"
    stop_synapse
fi

# 9. Report.
get() { # get NAME CONNS FIELD(3..8)
    local r
    for r in "${results[@]}"; do
        IFS='|' read -r n c req rps p50 p99 err non cpu batch <<<"$r"
        if [[ $n == "$1" && $c == "$2" ]]; then
            case $3 in rps) echo "$rps" ;; p50) echo "$p50" ;; p99) echo "$p99" ;; esac
            return 0
        fi
    done
    echo ""
}
ms() { awk -v u="$1" 'BEGIN { if (u == "") print "—"; else printf "%.2f ms", u / 1000 }'; }

describe() {
    case $1 in
        healthz) echo 'GET /healthz (no plan, context)' ;;
        empty-sync) echo 'GET /synapse/execute/Empty/start/sync' ;;
        empty-async) echo 'GET /synapse/execute/Empty/start (async, context)' ;;
        ad-get-sam) echo "GET /ad/user/{sAMAccountName}?returnobjectproperties=false" ;;
        ad-get-dn) echo "GET /ad/user/{DN}?returnobjectproperties=false" ;;
        ad-get-sam-all) echo "GET /ad/user/{sAMAccountName} (every attribute)" ;;
        raw-sam-all) echo 'raw ldap3: subtree search by sAMAccountName, CONNS connections' ;;
        raw-dn-seq) echo 'raw ldap3: base search of the DN (handler filter + attributes)' ;;
        raw-sam-seq) echo 'raw ldap3: subtree search by sAMAccountName (handler filter + attributes)' ;;
        raw-dn-conc) echo 'raw ldap3: base search of the DN, parallel connections' ;;
        empty-sync-tmpfs) echo 'GET /synapse/execute/Empty/start/sync, data dir on tmpfs' ;;
        empty-async-tmpfs) echo 'GET /synapse/execute/Empty/start, data dir on tmpfs' ;;
        *) echo "$1" ;;
    esac
}

build=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- Cargo.lock Cargo.toml src engine/src handlers/src controller/src 2>/dev/null || build="$build + uncommitted changes"
echo
echo "## bench/http.sh — $(date -u +%Y-%m-%d) — $(nproc) cores, synapse $build, DC $SYNAPSE_AD_URL, wrk -t$THREADS, ${WARMUP}s warm-up + ${DURATION}s per row"
echo
echo "| measurement | conns | requests | req/s | p50 | p99 | errors / non-2xx | CPU cores: synapse / DC / client / other | store commits (records each) |"
echo "|---|---|---|---|---|---|---|---|---|"
for r in "${results[@]}"; do
    IFS='|' read -r n c req rps p50 p99 err non cpu batch <<<"$r"
    printf '| %s | %s | %s | %s | %s | %s | %s / %s | %s | %s |\n' "$(describe "$n")" "$c" "$req" \
        "$(awk -v r="$rps" 'BEGIN { printf "%.0f", r }')" "$(ms "$p50")" "$(ms "$p99")" "$err" "$non" "${cpu//\// \/ }" "$batch"
done
echo
echo "| synapse process (VmRSS / VmHWM) | RSS before the load | RSS after | peak | store directory after |"
echo "|---|---|---|---|---|"
for m in "${memory[@]}"; do
    read -r -a f <<<"$m"
    n=${#f[@]}
    printf '| %s | %d MiB | %d MiB | %d MiB | %d MiB |\n' "${f[*]:0:n-4}" $((f[n - 4] / 1024)) $((f[n - 3] / 1024)) \
        $((f[n - 2] / 1024)) $((f[n - 1] / 1048576))
done
echo
echo "### API / raw LDAP (GET /ad/user/{sAMAccountName} against the same search over raw ldap3)"
echo
echo "| connections | API req/s | raw ops/s | throughput API/raw | API p99 | raw p99 | p99 API/raw |"
echo "|---|---|---|---|---|---|---|"
for c in "${AD_CONNS[@]}"; do
    awk -v c="$c" -v ar="$(get ad-get-sam-all "$c" rps)" -v rr="$(get raw-sam-all "$c" rps)" \
        -v ap="$(get ad-get-sam-all "$c" p99)" -v rp="$(get raw-sam-all "$c" p99)" 'BEGIN {
        printf "| %d | %.0f | %.0f | %.2f | %.2f ms | %.2f ms | %.2f |\n", c, ar, rr, (rr > 0 ? ar / rr : 0),
            ap / 1000, rp / 1000, (rp > 0 ? ap / rp : 0) }'
done
echo
echo "### Goals (information only)"
echo
echo "| goal | measured | verdict |"
echo "|---|---|---|"
sync_rps=$(get empty-sync "$CONNS" rps)
awk -v r="$sync_rps" -v g="$GOAL_SYNC_RPS" -v c="$CONNS" 'BEGIN {
    printf "| Empty-plan sync invocation >= %d req/s (%d connections) | %.0f req/s | %s |\n", g, c, r, (r >= g ? "PASS" : "MISS") }'
for kind in dn sam; do
    http_p50=$(get "ad-get-$kind" 1 p50)
    raw_p50=$(get "raw-$kind-seq" 1 p50)
    awk -v h="$http_p50" -v r="$raw_p50" -v g="$GOAL_AD_OVERHEAD_US" -v k="$kind" 'BEGIN {
        d = h - r
        printf "| AD GET by %s adds <= %.0f ms p50 over raw LDAP (1 connection) | %.2f ms (HTTP %.2f ms - raw %.2f ms) | %s |\n",
            (k == "dn" ? "DN" : "sAMAccountName"), g / 1000, d / 1000, h / 1000, r / 1000, (d <= g ? "PASS" : "MISS") }'
done
awk -v ar="$(get ad-get-sam-all 8 rps)" -v rr="$(get raw-sam-all 8 rps)" -v ap="$(get ad-get-sam-all 8 p99)" \
    -v rp="$(get raw-sam-all 8 p99)" -v gr="$GOAL_RATIO_RPS" -v gp="$GOAL_RATIO_P99" 'BEGIN {
    if (rr == "" || ar == "") { print "| API/raw at 8 connections | not measured (AD_CONNS has no 8) | — |"; exit }
    t = ar / rr; p = ap / rp
    printf "| GET /ad/user/{sAMAccountName} >= %.1fx raw throughput, p99 <= %dx raw (8 connections) | %.2fx, p99 %.2fx | %s |\n",
        gr, gp, t, p, (t >= gr && p <= gp ? "PASS" : "MISS") }'
log "done"
