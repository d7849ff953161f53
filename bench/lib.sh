# Sourced by the bench scripts (dns.sh, dns-rfc2136.sh): what they share to get a synapse binary and a server.
# Expects $root (the repository) and a `log` function.

# The synapse binary: $SYNAPSE_BIN (made absolute: the server runs in its own directory), else a release
# build of this checkout.
bench_synapse_bin() {
    if [[ -n ${SYNAPSE_BIN:-} ]]; then
        realpath "$SYNAPSE_BIN"
        return
    fi
    log "building synapse (release)"
    (cd "$root" && cargo build --release --bin synapse >&2)
    printf '%s\n' "${CARGO_TARGET_DIR:-$root/target}/release/synapse"
}

# A free TCP port on 127.0.0.1.
bench_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (at most 20 s) until synapse on 127.0.0.1:PORT answers /healthz; fails otherwise.
bench_wait_healthz() {
    local port=$1
    for _ in $(seq 1 200); do
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null
}
