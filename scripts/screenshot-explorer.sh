#!/usr/bin/env bash
# A screenshot of `vae serve` in headless Chromium after the browser test's moves (hover over
# the map, a stroke on the pad, an interpolation), on trained runs of your choice.
#
# Usage: scripts/screenshot-explorer.sh OUT.png RUN [RUN...]
#   e.g. scripts/screenshot-explorer.sh docs/explorer.png demo/runs/ae-2 demo/runs/vae-2
# Needs Debian's chromium and chromium-driver.
set -euo pipefail
out=$(realpath -m "$1")
shift
runs=()
for run in "$@"; do runs+=("$(realpath "$run")"); done
cd "$(dirname "$0")/.."
VAE_EXPLORER_RUNS="${runs[*]}" VAE_EXPLORER_SCREENSHOT="$out" \
    cargo test --release -p vae-cli --test browser -- --nocapture
echo "$out"
