#!/usr/bin/env bash
# Side-by-side training and evaluation throughput: this engine (`vae bench`) against PyTorch
# on CPU (bench/pytorch_vae.py), eager and through torch.compile; same model (MLP VAE
# 784-400-20, or the conv VAE with ARCH=conv; bce, Adam), same batch sizes, same thread
# count. The three run in turn, ROUNDS times, on a quiet machine, and each figure printed is
# the median of its rounds: a slow spell of the machine then hits all three alike.
#
# Usage: PYTHON=/path/to/venv/bin/python [ROUNDS=3] bench/compare.sh [THREADS] [SECONDS] [mlp|conv]
# PyTorch must be installed for $PYTHON (e.g. python3 -m venv ~/torchenv && ~/torchenv/bin/pip
# install torch numpy). Keep the venv outside the repository. COMPILE=0 leaves torch.compile out.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
seconds=${2:-5}
arch=${3:-mlp}
python=${PYTHON:-python3}
rounds=${ROUNDS:-3}
compile=${COMPILE:-1}

cargo build --release --quiet
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq "$rounds"); do
    echo "round $round of $rounds" >&2
    ./target/release/vae bench --json --arch "$arch" --threads "$threads" --seconds "$seconds" >>"$results"
    "$python" bench/pytorch_vae.py --mode speed --arch "$arch" --synthetic --threads "$threads" \
        --seconds "$seconds" 2>/dev/null >>"$results"
    if [ "$compile" = 1 ]; then
        "$python" bench/pytorch_vae.py --mode speed --arch "$arch" --synthetic --threads "$threads" \
            --seconds "$seconds" --compile 2>/dev/null >>"$results"
    fi
done

"$python" - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
runs = {}
for r in rows:
    runs.setdefault((r["framework"], r["what"], r["batch_size"]), []).append(r)
def median(framework, what, batch, field="images_per_sec"):
    got = runs.get((framework, what, batch))
    return statistics.median(r[field] for r in got) if got else None
ours = sorted({k[1:] for k in runs if k[0] == "vae"}, key=lambda k: (k[0] != "train", k[1]))
peak = median("vae", *ours[0], "peak_gflops")
n = len(runs.get(("vae",) + ours[0], []))
print(f"medians of {n} rounds; FMA peak of these threads {peak:.0f} GFLOP/s")
print(f"{'':6} {'batch':>6} {'vae img/s':>10} {'of peak':>8} {'eager img/s':>12} {'ratio':>6} {'compile img/s':>14} {'ratio':>6}")
for what, batch in ours:
    mine = median("vae", what, batch)
    share = 100 * median("vae", what, batch, "gflops") / peak
    cells = []
    for framework in ("pytorch", "pytorch-compile"):
        theirs = median(framework, what, batch)
        cells += [f"{theirs:,.0f}", f"{mine / theirs:.2f}x"] if theirs else ["n/a", "n/a"]
    print(f"{what:6} {batch:>6} {mine:>10,.0f} {share:>7.0f}% {cells[0]:>12} {cells[1]:>6} {cells[2]:>14} {cells[3]:>6}")
PY
