#!/usr/bin/env bash
# Renders an HTML report (from `vae demo`) in headless Chromium and saves a full-page PNG, to
# check that it opens and shows every section. Needs Debian's chromium (apt-get install chromium).
#
# Usage: scripts/screenshot-report.sh demo/report.html report.png [HEIGHT]
set -euo pipefail
report=$(realpath "$1")
out=$(realpath -m "$2")
height=${3:-9000}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# Background networking off: the page is self-contained and this machine may be offline.
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1280,"$height" \
    --screenshot="$out" "file://$report" 2>/dev/null
echo "$out"
