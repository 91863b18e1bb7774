#!/usr/bin/env bash
# The whole test suite, against the real Docker Engine and a real server.
#
# Builds the offline server image DOLLY_TEST_IMAGE names (default
# dolly-mariadb:10.11; dolly-mysql:9 and dolly-mariadb:11.8 too) if it is
# missing, mounts a reflink-capable XFS for the tests' data folders when run
# as root (plain temp dirs otherwise), then runs every test of the
# workspace; with --core-flow, only the core flow on that server
# (crates/server/tests/engine/servers.rs); with --parity, the core flow plus
# the promises that must hold on every server family: the import corpus
# (engine/corpus.rs: the public samples in ../shared/corpus, or
# DOLLY_CORPUS_DIR), the masking canaries (engine/masking.rs), one big
# table spread over sessions (engine/bigtable.rs), and standby resets and
# sleeping instances (engine/standby.rs, engine/sleep.rs). CI runs --parity on MySQL 9 and
# --core-flow on MariaDB 11.8.
#
# Usage: scripts/test.sh [--core-flow|--parity] [test runner arguments]
#        DOLLY_TEST_IMAGE=dolly-mysql:9 scripts/test.sh --parity
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if ! docker info >/dev/null 2>&1; then
    echo "the tests need a running Docker Engine: docker info fails" >&2
    exit 1
fi
core_flow=0
parity=0
case "${1:-}" in
    --core-flow) core_flow=1; shift ;;
    --parity) parity=1; shift ;;
esac
export DOLLY_TEST_IMAGE="${DOLLY_TEST_IMAGE:-dolly-mariadb:10.11}"
docker/build-server-image.sh "$DOLLY_TEST_IMAGE"

if [[ -z "${DOLLY_TEST_DIR:-}" && $(id -u) == 0 ]]; then
    DOLLY_TEST_DIR="$(scripts/reflink-fs.sh /srv/dolly-test 16G)"
    export DOLLY_TEST_DIR
fi
echo "test data folders in ${DOLLY_TEST_DIR:-the system temp dir}"

# Every container of this run carries dolly-test=$DOLLY_TEST_RUN (default 1):
# another run on the same engine with another value is left alone.
export DOLLY_TEST_RUN="${DOLLY_TEST_RUN:-1}"
sweep() {
    # Containers a killed run of this label may have left.
    local ids
    ids=$(docker ps -aq --filter "label=dolly-test=$DOLLY_TEST_RUN" || true)
    if [[ -n "$ids" ]]; then docker rm -f $ids >/dev/null || true; fi
}
sweep
trap sweep EXIT

echo "tests on $DOLLY_TEST_IMAGE"
if ((core_flow)); then
    cargo test -p dolly-server --test engine "$@" -- servers::
elif ((parity)); then
    cargo test -p dolly-server --test engine "$@" -- --test-threads=2 servers:: corpus:: masking:: bigtable:: standby:: sleep::
elif cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@" -- --test-threads=2
fi
