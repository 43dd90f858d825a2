#!/usr/bin/env bash
# The kill test at full strength: `vae train` killed with SIGKILL 20 times at varied moments,
# resumed each time, must end bit-identical to an uninterrupted run. CI runs it with 5 kills.
set -euo pipefail
cd "$(dirname "$0")/.."
VAE_KILL_TEST_KILLS=${1:-20} cargo test --release -p vae-cli --test cli -- training_killed_at_random_moments --nocapture
