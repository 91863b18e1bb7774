#!/usr/bin/env bash
# Times create, snapshot, restore, reset and delete on one template through
# the API (medians of N runs), with dollyd serving DATA_DIR.
# Usage: scripts/lifecycle-timings.sh DATA_DIR TEMPLATE [N]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$1"; T="$2"; N="${3:-5}"
PORT="${PORT:-5098}"
BIN="${DOLLYD:-target/release/dollyd}"
DOLLY_DATA_DIR="$DATA" DOLLY_LISTEN="127.0.0.1:$PORT" DOLLY_IMAGE="${DOLLY_IMAGE:-dolly-mariadb:10.11}" \
    DOLLY_MIN_FREE_DISK=0 DOLLY_LABELS=dolly-timings=1 "$BIN" serve >/tmp/dolly-timings.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "localhost:$PORT/readyz" >/dev/null && break; sleep 0.1; done
U="http://127.0.0.1:$PORT/api/v1/templates/$T/instances"
t() { local s; s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
declare -A times
for i in $(seq "$N"); do
    times[create]+="$(t curl -sf -X POST "$U/timing$i") "
    times[snapshot]+="$(t curl -sf -X POST "$U/timing$i/snapshots/s") "
    times[restore]+="$(t curl -sf -X POST "$U/timing$i/snapshots/s/restore") "
    times[reset]+="$(t curl -sf -X POST "$U/timing$i/reset") "
    times[delete]+="$(t curl -sf -X DELETE "$U/timing$i") "
done
echo "| operation | median of $N (s) | all (s) |"
echo "|---|---|---|"
for op in create snapshot restore reset delete; do
    median=$(tr ' ' '\n' <<<"${times[$op]}" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "| $op | $median | ${times[$op]}|"
done
