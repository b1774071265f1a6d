#!/usr/bin/env bash
# Make sure Chromium is installed for the browser tests (Playwright launches /usr/bin/chromium;
# `playwright install` cannot download here). A no-op when it is present.
#
# As root with apt-get: installs the Debian package. Otherwise it only says what is missing;
# the browser tests then skip, which fails the run under CI=true (tests/support/ci.py).
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

# A Devanagari font, so the screenshots of pages in Nepali show letters rather than boxes
# (phones ship one; a bare Debian does not). Small, and never a reason to fail.
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=ne 2>/dev/null)" ] \
    && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-lohit-deva \
        >/dev/null 2>&1 || echo "ensure_chromium: no Devanagari font installed" >&2
fi

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

ci_enabled() {
    case "${CI:-}" in 1 | true | TRUE | True | yes | on) return 0 ;; *) return 1 ;; esac
}

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $CHROMIUM is missing and cannot be installed from here" \
        "(needs root and apt-get); the browser tests will skip." \
        "Install it with: sudo apt-get install -y chromium" >&2
    exit 0
fi

echo "ensure_chromium: $CHROMIUM is missing; installing the chromium package with apt-get" >&2
if apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; then
    exit 0
fi
echo "ensure_chromium: apt-get could not install chromium; the browser tests will skip" >&2
if ci_enabled; then
    exit 1
fi
exit 0
