#!/usr/bin/env bash
# The project's test command (README "Test"; .ci/run calls exactly this).
# Installs what the tests need, then: format check, clippy with warnings denied, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need_cmd() { command -v "$1" >/dev/null 2>&1; }
if ! need_cmd cargo; then
  echo "cargo is required (rustup toolchain)" >&2
  exit 1
fi
# rustfmt and clippy come with the toolchain; add them if this toolchain lacks them.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

export CARGO_TERM_COLOR=never
# Two cores: keep one build profile for clippy and tests where possible.
cargo fmt --all -- --check
# Samba and the golden AD DC for the integration tests (idempotent; fast when already there).
tests/fixtures/samba-dc.sh install
tests/fixtures/samba-dc.sh golden
# nats-server (JetStream) for the node worker tests (tests/nodes.rs; each test starts its own).
tests/fixtures/nats.sh install
# bind9 (named, dig, nsupdate) for the DnsHandler's RFC 2136 tests (tests/dns_rfc2136.rs; each test starts its own).
tests/fixtures/bind9.sh install
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one "test result" per test binary, the last being doc tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i; if ($(i+1) ~ /^ignored;/) s += $i } }
     END { printf "summary: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
