#!/usr/bin/env bash
# The randomized crash soak (issue 25): N trials per state-changing
# operation, each killing dollyd with SIGKILL (or, with `container`, the
# instance's container / the import container with `docker kill`) at a
# moment drawn at random over the operation's measured duration, then
# restarting dollyd and checking every invariant of RELIABILITY.md
# ("Invariants after a crash"). Failing trials are reported with their
# seed and the soak goes on (on a fresh data folder); it exits non-zero if
# any failed.
#
#   DOLLY_TEST_DIR=/srv/dolly-test scripts/crash-soak.sh 50            # both kinds
#   DOLLY_TEST_DIR=/srv/dolly-test scripts/crash-soak.sh 50 dollyd
#   DOLLY_CRASH_OPS=reset,restore scripts/crash-soak.sh 200 dollyd
#   DOLLY_CRASH_SEED=<seed> DOLLY_CRASH_OPS=<op> scripts/crash-soak.sh 1 dollyd   # replay
#
# Needs Docker, the image (DOLLY_TEST_IMAGE, default dolly-mariadb:10.11)
# and the docker CLI. The full log goes to $DOLLY_CRASH_LOG
# (default crash-soak.log); the per-trial and summary lines are printed.
set -euo pipefail
N=${1:?usage: scripts/crash-soak.sh N [dollyd|container|all]}
KIND=${2:-all}
LOG=${DOLLY_CRASH_LOG:-crash-soak.log}
case "$KIND" in
    dollyd) FILTER=random_sigkills_of_dollyd ;;
    container) FILTER=random_kills_of_the_containers ;;
    all) FILTER=random_ ;;
    *) echo "unknown kind $KIND (dollyd, container, all)" >&2; exit 2 ;;
esac
export DOLLY_CRASH_TRIALS="$N" DOLLY_CRASH_KEEP_GOING=1
cd "$(dirname "$0")/.."
set +e
cargo test -p dolly-server --test engine -- --nocapture --test-threads=2 "crash_random::$FILTER" \
    >"$LOG" 2>&1
rc=$?
set -e
grep -E '^crash-(trial|summary)|^  ' "$LOG" | grep -vE '^  +[0-9]+: |^  +at ' || true
echo "crash-soak: exit $rc; full log in $LOG"
exit $rc
