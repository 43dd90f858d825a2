#!/usr/bin/env bash
# Side-by-side training and evaluation throughput: this engine (`vae bench`) against PyTorch
# on CPU (bench/pytorch_vae.py), same model (MLP VAE 784-400-20, or the conv VAE with ARCH=conv;
# bce, Adam), same batch sizes, same thread count, one after the other on a quiet machine.
# Prints each result and the ratio.
#
# Usage: PYTHON=/path/to/venv/bin/python bench/compare.sh [THREADS] [SECONDS] [mlp|conv]
# PyTorch must be installed for $PYTHON (e.g. python3 -m venv ~/torchenv && ~/torchenv/bin/pip
# install torch numpy). Keep the venv outside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
seconds=${2:-5}
arch=${3:-mlp}
python=${PYTHON:-python3}

cargo build --release --quiet
ours=$(./target/release/vae bench --json --arch "$arch" --threads "$threads" --seconds "$seconds")
theirs=$("$python" bench/pytorch_vae.py --mode speed --arch "$arch" --synthetic --threads "$threads" --seconds "$seconds" 2>/dev/null)

"$python" - "$ours" "$theirs" <<'PY'
import json, sys
ours = {(r["what"], r["batch_size"]): r for r in map(json.loads, sys.argv[1].splitlines())}
theirs = {(r["what"], r["batch_size"]): r for r in map(json.loads, sys.argv[2].splitlines())}
print(f"{'':6} {'batch':>6} {'vae img/s':>11} {'PyTorch img/s':>14} {'ratio':>6}  {'% of GEMM ceiling':>18}")
for key in sorted(ours, key=lambda k: (k[0] != "train", k[1])):
    r = ours[key]
    t = theirs.get(key)
    ratio = f"{r['images_per_sec'] / t['images_per_sec']:.2f}x" if t else "n/a"
    torch = f"{t['images_per_sec']:,.0f}" if t else "n/a"
    ceiling = 100 * r["gflops"] / r["gemm_ceiling_gflops"]
    print(f"{key[0]:6} {key[1]:>6} {r['images_per_sec']:>11,.0f} {torch:>14} {ratio:>6}  {ceiling:>17.0f}%")
PY
