#!/usr/bin/env bash
# Installs contracts/node_modules (solc, OpenZeppelin, anvil) exactly as package-lock.json pins
# them, when it is missing or older than the lockfile; otherwise does nothing. Silent on success,
# prints npm's output only when it fails. Safe to call from several processes at once.
#
#   bash contracts/ensure_deps.sh
set -euo pipefail

# Parameter expansion rather than dirname: this must still run (and say what is missing) on a
# PATH that lacks most tools.
src="${BASH_SOURCE[0]}"
[[ $src == */* ]] || src="./$src"
here="$(cd "${src%/*}" && pwd)"
cd "$here"

# Written after a successful install: its mtime, not node_modules' own (which npm does not
# always touch), says which lockfile the tree was installed from.
stamp=node_modules/.ensure-deps-stamp

up_to_date() {
    [[ -f $stamp && ! package-lock.json -nt $stamp && ! package.json -nt $stamp ]]
}

up_to_date && exit 0

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "contracts/ensure_deps.sh: '$tool' not found on PATH; install Node.js 20+ with npm" \
            "(Debian: apt-get install nodejs npm)" >&2
        exit 1
    fi
done

install() {
    # Another caller may have finished while this one waited for the lock.
    up_to_date && return 0
    local log
    log="$(mktemp)"
    # --ignore-scripts: the only install script (anvil's postinstall) is a fallback that downloads
    # a binary when the platform package is missing; the platform package is in the lockfile, and
    # a download could not work offline anyway.
    if ! npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "contracts/ensure_deps.sh: npm ci failed in $here" >&2
        return 1
    fi
    rm -f "$log"
    touch "$stamp"
}

if command -v flock >/dev/null 2>&1; then
    # The lock file lives beside node_modules, which npm ci deletes and recreates.
    exec 9>"$here/.ensure-deps.lock"
    flock 9
    install
else
    install
fi
