#!/usr/bin/env bash
# ActiveDirectoryHandler vs raw ldap3 on a throwaway Samba AD DC (handlers/benches/ad.rs).
#
#   bench/ad-handler.sh
#
# Installs and provisions the DC fixture if needed (tests/fixtures/samba-dc.sh install + golden; root),
# builds the bench, starts a DC on a free 127.0.0.x, runs `cargo bench -p synapse-handlers --bench ad`
# against it (SYNAPSE_BENCH_DC_ENV = the DC's KEY=VALUE file) and always stops the DC on exit.
# Bounded: the bench run gets BENCH_TIMEOUT seconds (default 300), the DC stops itself after 900 s.
# The results (markdown tables) go to stdout; progress and the fixture's logs to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixture=$root/tests/fixtures/samba-dc.sh
readonly root fixture
readonly BENCH_TIMEOUT=${BENCH_TIMEOUT:-300}
readonly DC_MAXRUN=900
readonly START_ATTEMPTS=5

log() { printf 'ad-handler bench: %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/synapse-bench-ad.XXXXXX")
dc_dir=$work/dc
env_file=$work/dc.env
dc_started=0

cleanup() {
    local rc=$?
    if ((dc_started)); then
        log "stopping the DC in $dc_dir"
        "$fixture" stop "$dc_dir" || log "warning: samba-dc.sh stop $dc_dir failed"
    fi
    rm -rf -- "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$root"

# 1. The fixture (both steps are idempotent and take well under a second when already done).
"$fixture" install
"$fixture" golden

# 2. Build before the DC starts, so the DC only lives while the bench measures.
log "building the bench"
cargo bench -p synapse-handlers --bench ad --no-run

# 3. A DC on a free loopback address (start exits 3 when another DC took the address first).
log "starting a DC on a free loopback address"
dc_started=1
# (dc_started stays 1 on failure: stopping a DC that never came up is harmless.)
DC_START_ATTEMPTS=$START_ATTEMPTS "$fixture" start-any "$dc_dir" "$DC_MAXRUN" >"$env_file" || {
    echo "samba-dc.sh start-any failed" >&2
    exit 1
}

# 4. The bench.
log "running the bench (at most ${BENCH_TIMEOUT} s)"
SYNAPSE_BENCH_DC_ENV=$env_file timeout "$BENCH_TIMEOUT" \
    cargo bench -p synapse-handlers --bench ad
