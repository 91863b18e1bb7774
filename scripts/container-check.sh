#!/usr/bin/env bash
# dollyd in a container, with the engine socket mounted and the data folder
# at a DIFFERENT path inside than outside: imports the example dump, creates
# an instance, reads its data from the host, removes it. Proves that dollyd
# finds the engine's view of its data folder from its own container's mounts.
# Needs the images: docker/build-mariadb-image.sh, docker/build-dolly-image.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
H="${1:-/srv/dolly-test/container-check}"
NAME=dolly-container-check
PORT="${PORT:-5099}"
cleanup() {
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    ids=$(docker ps -aq --filter "label=dolly.root=/data" --filter label=dolly-check=1 || true)
    [[ -n "$ids" ]] && docker rm -f $ids >/dev/null || true
    rm -rf "$H"
}
trap cleanup EXIT
rm -rf "$H"; mkdir -p "$H/dumps"; cp examples/dumps/shop.sql "$H/dumps/"
common=(-v /var/run/docker.sock:/var/run/docker.sock -v "$H:/data"
    -e DOLLY_DATA_DIR=/data -e DOLLY_IMAGE=dolly-mariadb:10.11
    -e DOLLY_LABELS=dolly-check=1 -e DOLLY_MIN_FREE_DISK=0)
docker run --rm "${common[@]}" dolly:latest update
docker run -d --name "$NAME" -p "127.0.0.1:$PORT:5001" --add-host host.docker.internal:host-gateway \
    "${common[@]}" -e DOLLY_CONNECT_HOST=host.docker.internal -e DOLLY_PUBLIC_HOST=127.0.0.1 \
    dolly:latest serve >/dev/null
for _ in $(seq 50); do curl -sf "localhost:$PORT/readyz" >/dev/null && break; sleep 0.2; done
body=$(curl -sf -X POST "localhost:$PORT/db/shop/check")
read -r port password < <(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["port"], d["password"])' <<<"$body")
count=$(MYSQL_PWD="$password" mariadb -h127.0.0.1 -P"$port" -uroot -N default -e "SELECT COUNT(*) FROM customers")
[[ "$count" == 3 ]] || { echo "expected 3 customers, got $count" >&2; exit 1; }
# The whole log first, then grep: `grep -q` closing the pipe early would
# make `docker logs` die of SIGPIPE, which pipefail reports as a failure.
logs=$(docker logs "$NAME" 2>&1)
grep -q "from our own container's mounts" <<<"$logs" || { echo "host path not discovered; dollyd's log:" >&2; echo "$logs" >&2; exit 1; }
curl -sf -X DELETE "localhost:$PORT/db/shop/check" >/dev/null
# An instance behind a forwarder: dollyd copies dolly-forward into its data
# folder and the engine mounts it from the host's view of that folder.
body=$(curl -sf -X POST -H 'content-type: application/json' -d '{"standby": true}' \
    "localhost:$PORT/api/v1/templates/shop/instances/fwd")
read -r port password < <(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["port"], d["password"])' <<<"$body")
count=$(MYSQL_PWD="$password" mariadb -h127.0.0.1 -P"$port" -uroot -N default -e "SELECT COUNT(*) FROM customers")
[[ "$count" == 3 ]] || { echo "through the forwarder: expected 3 customers, got $count" >&2; exit 1; }
[[ -x "$H/bin/dolly-forward" ]] || { echo "dolly-forward is not in the data folder" >&2; exit 1; }
curl -sf -X DELETE "localhost:$PORT/api/v1/templates/shop/instances/fwd" >/dev/null
echo "ok: dollyd in a container served an instance whose data the host read, and one behind dolly-forward"
