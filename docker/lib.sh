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
