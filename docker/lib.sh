# Shared by the offline image builds: sourced, not run.

# The Debian mirror apt is configured with: deb822 sources first, then
# one-line lists. Never a host name written in the repository.
mirror() {
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources | grep -v -- '-security' | head -n1 || true)
    fi
    if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list \
            | grep -v -- '-security' | head -n1 || true)
    fi
    if [[ -z "$uri" ]]; then
        echo "cannot find a Debian mirror in apt's configuration" >&2
        exit 1
    fi
    echo "$uri"
}

require_debootstrap() {
    if ! command -v debootstrap >/dev/null; then
        echo "debootstrap is missing: apt-get install debootstrap" >&2
        exit 1
    fi
}

# build_server_image IMAGE SUITE TITLE CMD PACKAGES...
#
# debootstraps a minimal Debian SUITE with PACKAGES from the mirror apt
# uses, removes package caches, docs and the datadir the package created
# (dolly initialises its own), prepares /run/mysqld for the image's mysql
# user and `docker import`s the tree as IMAGE. Idempotent: nothing happens
# when IMAGE exists, unless FORCE=1. Prints how long the build took.
build_server_image() {
    local image="$1" suite="$2" title="$3" cmd="$4"
    shift 4
    local packages
    packages=$(IFS=,; echo "$*")
    if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$image" >/dev/null 2>&1; then
        echo "image $image already present"
        return 0
    fi
    require_debootstrap
    local mirror_uri work rootfs started
    mirror_uri="$(mirror)"
    started=$SECONDS
    work="$(mktemp -d /var/tmp/dolly-image.XXXXXX)"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    rootfs="$work/rootfs"

    echo "building $image from $suite packages ($packages) at $mirror_uri"
    # The keyring apt trusts signs every suite of the archive (sid too).
    debootstrap --variant=minbase --include="$packages" \
        "$suite" "$rootfs" "$mirror_uri" >"$work/debootstrap.log" 2>&1 || {
        tail -n 40 "$work/debootstrap.log" >&2
        exit 1
    }

    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
           "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
           "$rootfs"/var/lib/mysql/* "$rootfs"/var/lib/mysql-files/* "$rootfs"/var/log/mysql/*
    mkdir -p "$rootfs/run/mysqld" "$rootfs/var/lib/mysql"
    chroot "$rootfs" chown mysql:mysql /run/mysqld /var/lib/mysql

    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'EXPOSE 3306' \
        --change "CMD $cmd" \
        --change "LABEL org.opencontainers.image.title=$title" \
        - "$image" >/dev/null
    echo "built $image ($(docker image inspect -f '{{.Size}}' "$image") bytes) in $((SECONDS - started)) s"
}
