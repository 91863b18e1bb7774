#!/usr/bin/env bash
# Fuzzes /api/v1 from its OpenAPI document with schemathesis (PyPI).
#
# Starts target/debug/dollyd on a free loopback port with a temporary data
# folder, runs schemathesis against /api/v1/openapi.json (bounded by
# FUZZ_MAX_EXAMPLES per operation and FUZZ_MAX_TIME seconds), then stops
# dollyd and removes every container labelled dolly-test=1 that this run
# made. Exits non-zero when schemathesis reports a finding.
#
#   scripts/fuzz.sh                     # not_a_server_error + schema checks
#   FUZZ_CHECKS=not_a_server_error scripts/fuzz.sh
#
# Needs: python3 (with venv), Docker, the image dolly-mariadb:10.11
# (docker/build-mariadb-image.sh) and a built dollyd (cargo build).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/target/fuzz-venv"
DOLLYD="${DOLLYD:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/dollyd}"
IMAGE="${DOLLY_TEST_IMAGE:-dolly-mariadb:10.11}"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-20}"
MAX_TIME="${FUZZ_MAX_TIME:-300}"
CHECKS="${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance}"
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"

if [[ ! -x "$VENV/bin/schemathesis" ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
if [[ ! -x "$DOLLYD" ]]; then
    (cd "$ROOT" && cargo build --bin dollyd)
fi

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DATA="$(mktemp -d "${DOLLY_TEST_DIR:-${TMPDIR:-/tmp}}/dolly-fuzz-XXXXXX")"
PREFIX="fz$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')-"
LOG="$DATA.log"
PID=""

cleanup() {
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    # Only this run's containers: the test label and this data folder.
    ids="$(docker ps -aq --filter label=dolly-test=1 --filter "label=dolly.root=$DATA")"
    if [[ -n "$ids" ]]; then
        # shellcheck disable=SC2086
        docker rm -f $ids >/dev/null || true
    fi
    rm -rf "$DATA"
}
trap cleanup EXIT

mkdir -p "$DATA/dumps"
# One small template, so routes that need one have something to act on.
cat >"$DATA/dumps/shop.sql" <<'SQL'
-- MariaDB dump 10.19
CREATE TABLE `t` (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB;
INSERT INTO `t` VALUES (1,'one'),(2,'two');
-- Dump completed on 2026-11-23
SQL

export DOLLY_DATA_DIR="$DATA"
export DOLLY_IMAGE="$IMAGE"
export DOLLY_LISTEN="127.0.0.1:$PORT"
export DOLLY_PUBLIC_HOST=127.0.0.1
export DOLLY_LABELS=dolly-test=1
export DOLLY_CONTAINER_PREFIX="$PREFIX"
export DOLLY_IMPORT_BUFFER_POOL=256MiB
export DOLLY_MIN_FREE_DISK=0
# A bound on what the fuzzer can make: beyond it creates answer 429.
export DOLLY_MAX_INSTANCES="${FUZZ_MAX_INSTANCES:-10}"

"$DOLLYD" update >"$LOG" 2>&1
"$DOLLYD" serve >>"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
        break
    fi
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null

set +e
"$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/api/v1/openapi.json" \
    --url "http://127.0.0.1:$PORT" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --request-timeout 120 \
    --workers 1 \
    --seed "${FUZZ_SEED:-1}" \
    --suppress-health-check all
STATUS=$?
set -e

if [[ $STATUS -ne 0 ]]; then
    echo "fuzz: schemathesis reported findings (exit $STATUS); dollyd's log: $LOG" >&2
    grep -E ' (5[0-9][0-9]) ' "$LOG" | tail -20 >&2 || true
else
    rm -f "$LOG"
fi
exit "$STATUS"
