#!/usr/bin/env bash
# Fuzzes the readers of untrusted input with libFuzzer (cargo fuzz): the IDX, NPY and CSV readers, run folders
# (config.json + model.safetensors), checkpoints, the explorer's JSON API (`vae serve`) and
# fitted samplers (sampler-gmm.safetensors).
# Each target runs for SECONDS (default 600)
# and prints its executions; a crash stops it and leaves the input in fuzz/artifacts/TARGET/.
# Turn any such input into a test case in crates/vae/tests before fixing the bug.
#
# Needs cargo-fuzz (cargo install cargo-fuzz). The toolchain here is stable, so libFuzzer's
# nightly-only flags are unlocked with RUSTC_BOOTSTRAP=1 for this build alone.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(idx npy csv run_folder checkpoint api sampler)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in "${targets[@]}"; do
    echo "== $target for $seconds s"
    mkdir -p "corpus/$target"
    cargo fuzz run -O "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 2>&1 |
        grep -E "^(#[0-9]+ +(DONE|INITED)|Done|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)" || true
done
