#!/usr/bin/env bash
# Scheduler figures (issue 10; docs/scheduling.md), against a real `synapse serve` on loopback:
#
#   bench/schedules.sh            # release build (cargo build --release first)
#   BIN=target/debug/synapse N=10000 DUE=1000 bench/schedules.sh
#
# 1. Idle cost: CPU (% of one core over IDLE_SECS) and RSS of the empty server, then with N schedule files
#    loaded (yearly crons, nothing due): printed as figures and as the difference/ratio to the empty server.
# 2. Restart with N schedules: seconds from exec until /healthz answers (the schedule files are loaded and
#    synced into the store before the server accepts), for the first start and for a restart on the same store.
# 3. DUE schedules due in the same second (6-field crons): firing lateness p50/p99 (from each occurrence's
#    LatenessMs) and instances/s (DUE over the spread of their RecordedAt).
# Goals (not asserted): idle < 1% of a core and < 50 MiB over the empty server; lateness p99 < 100 ms.
# Every wait is bounded; the servers are stopped by PID on exit.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$root/target/release/synapse}
N=${N:-10000}
DUE=${DUE:-1000}
IDLE_SECS=${IDLE_SECS:-10}
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
readonly root BIN N DUE IDLE_SECS PORT
url=http://127.0.0.1:$PORT
ready=0

log() { printf 'schedules bench: %s\n' "$*" >&2; }
[[ -x $BIN ]] || { echo "no binary at $BIN (cargo build --release, or BIN=...)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/synapse-bench-sched.XXXXXX")
pid=
stop() {
    if [[ -n $pid ]]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        pid=
    fi
}
cleanup() { local rc=$?; stop; rm -rf -- "$work"; exit "$rc"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A plans directory with one quick plan, and its schedules directory beside it.
setup() { # DIR
    mkdir -p "$1/plans" "$1/schedules" "$1/data"
    cat >"$1/plans/Quick.yaml" <<'PLAN'
Name: Quick
Actions:
- Name: first
  Handler: {Type: Empty}
  Parameters:
    Values: {ExitData: {Answer: 42}}
PLAN
}

# Starts the server on DIR; sets `ready` to the seconds until /healthz answered.
start() { # DIR
    local t0 t1
    t0=$(date +%s.%N)
    SYNAPSE_LOG=warn "$BIN" serve --no-auth --listen "127.0.0.1:$PORT" --plans "$1/plans" --data "$1/data" \
        >"$1/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 1200); do
        kill -0 "$pid" 2>/dev/null || { cat "$1/serve.log" >&2; exit 1; }
        if curl -fs "$url/healthz" >/dev/null 2>&1; then
            t1=$(date +%s.%N)
            ready=$(echo "$t1 - $t0" | bc -l)
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$1/serve.log" >&2; exit 1; }
        sleep 0.05
    done
    echo "the server did not answer /healthz within 60 s" >&2
    exit 1
}

# CPU % of one core over IDLE_SECS and RSS in MiB of the running server: "CPU RSS".
idle() {
    local tck a b rss
    tck=$(getconf CLK_TCK)
    a=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    sleep "$IDLE_SECS"
    b=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    rss=$(awk '/VmRSS/ {print $2 / 1024}' "/proc/$pid/status")
    printf '%.2f %.1f\n' "$(echo "($b - $a) * 100 / $tck / $IDLE_SECS" | bc -l)" "$rss"
}

# N schedule files, nothing due for a year.
write_idle_files() { # DIR COUNT
    for i in $(seq "$2"); do
        printf 'Plan: Quick\nCron: "0 3 1 1 *"\nTimeZone: Europe/Berlin\n' >"$1/schedules/s$i.yaml"
    done
}

log "1. empty server"
setup "$work/empty"
start "$work/empty"
read -r cpu0 rss0 < <(idle)
stop

log "2. $N schedule files"
setup "$work/many"
write_idle_files "$work/many" "$N"
start "$work/many"
ready1=$ready
read -r cpu1 rss1 < <(idle)
listed=$(curl -fs "$url/synapse/schedules" | grep -o '"Name":' | wc -l)
stop
start "$work/many"
ready2=$ready
stop

log "3. $DUE schedules due in the same second"
setup "$work/due"
target=$(( $(date +%s) + 45 ))
cron=$(date -u -d "@$target" '+%-S %-M %-H * * *')
for i in $(seq "$DUE"); do
    printf 'Plan: Quick\nCron: "%s"\nOverlap: AllowAll\n' "$cron" >"$work/due/schedules/d$i.yaml"
done
start "$work/due"
now=$(date +%s)
(( now < target )) || { echo "loading $DUE schedules took past their time; raise the lead time" >&2; exit 1; }
sleep $(( target - now + 5 ))
: >"$work/lateness"
: >"$work/recorded"
for _ in $(seq 60); do
    fired=0
    : >"$work/lateness"; : >"$work/recorded"
    for i in $(seq "$DUE"); do
        occ=$(curl -fs "$url/synapse/schedules/d$i/occurrences?limit=1")
        if grep -q '"Fired"' <<<"$occ"; then
            fired=$((fired + 1))
            grep -o '"LatenessMs":[0-9-]*' <<<"$occ" | cut -d: -f2 >>"$work/lateness"
            grep -o '"RecordedAt":"[^"]*"' <<<"$occ" | cut -d'"' -f4 >>"$work/recorded"
        fi
    done
    (( fired == DUE )) && break
    sleep 1
done
stop
p50=$(sort -n "$work/lateness" | awk '{a[NR]=$1} END {print a[int(NR*0.50+0.5)]}')
p99=$(sort -n "$work/lateness" | awk '{a[NR]=$1} END {i=int(NR*0.99+0.5); if (i<1) i=1; print a[i]}')
spread=$(sort "$work/recorded" | sed -n '1p;$p' | xargs -n1 date +%s.%N -d | paste -sd' ' | awk '{print $2 - $1}')
rate=$(echo "$fired / ($spread + 0.001)" | bc -l)

printf '\n| figure | value |\n|---|---|\n'
printf '| idle CPU, empty server | %s %% of a core |\n' "$cpu0"
printf '| idle CPU, %s schedules | %s %% of a core (+%.2f) |\n' "$N" "$cpu1" "$(echo "$cpu1 - $cpu0" | bc -l)"
printf '| RSS, empty server | %s MiB |\n' "$rss0"
printf '| RSS, %s schedules | %s MiB (+%.1f MiB, x%.2f) |\n' "$N" "$rss1" "$(echo "$rss1 - $rss0" | bc -l)" "$(echo "$rss1 / $rss0" | bc -l)"
printf '| schedules listed | %s |\n' "$listed"
printf '| ready after first start with %s files | %.2f s |\n' "$N" "$ready1"
printf '| ready after restart with %s schedules | %.2f s |\n' "$N" "$ready2"
printf '| %s due in one second: fired | %s |\n' "$DUE" "$fired"
printf '| lateness p50 / p99 | %s ms / %s ms |\n' "$p50" "$p99"
printf '| instances/s | %.0f |\n' "$rate"
