# shellcheck shell=bash
# Installs the Debian packages a script needs when they are missing; sourced, not run.

# install_packages PACKAGE...: as root, updates the package lists and installs them; otherwise
# says which to install and fails.
install_packages() {
    if [ "$(id -u)" != 0 ]; then
        printf 'missing: %s; install them (Debian: apt-get install %s), or run as root\n' "$*" "$*" >&2
        return 1
    fi
    printf 'Installing %s (Debian packages)...\n' "$*" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "$@" >&2
}
