#!/usr/bin/env bash
# Installs the Debian packages the test suite drives from outside Python:
#   chromium   headless browser for the Temporal Web UI test (tests/e2e/test_temporal_ui.py)
#   prometheus ships promtool, which checks and unit-tests deploy/prometheus/alerts.yml
# Idempotent and quiet: installs only what is missing. Needs root (apt-get);
# as another user it only reports what is missing and exits 0, and the tests
# then say what to install.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-system-deps: missing ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
    exit 0
fi

echo "ensure-system-deps: installing ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --no-install-recommends keeps prometheus from pulling in its node exporter
# and web assets; promtool comes with the package itself.
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >"$log" 2>&1; then
    cat "$log" >&2
    echo "ensure-system-deps: apt-get failed installing ${missing[*]}" >&2
    exit 1
fi
# Debian starts the prometheus service on install where systemd runs; the
# tests need only promtool, so a started server is stopped again.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus >/dev/null 2>&1 || true
fi
for tool in chromium promtool; do
    command -v "$tool" >/dev/null 2>&1 || { echo "ensure-system-deps: $tool still missing" >&2; exit 1; }
done
