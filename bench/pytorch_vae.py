#!/usr/bin/env python3
"""PyTorch reference for the `vae` Rust trainer (side-by-side benchmark).

This mirrors the classic MLP VAE of pytorch/examples (vae/main.py) with the
conventions our Rust engine uses, so that losses and speeds are comparable:

  * input: 784 = 28x28 grey pixels, pixel/255 as float32
  * encoder: Linear(784,H1) ReLU [Linear(H1,H2) ReLU ...]
             fc_mu, fc_logvar: Linear(H_last, L)
  * decoder: Linear(L,H_last) ReLU [... mirror of the hidden list ...]
             fc_out: Linear(H1, 784) -> logits (no sigmoid; the loss takes logits)
  * default PyTorch initialisation, Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
  * loss is the negative ELBO per image, AVERAGED over the batch
    (pytorch/examples sums over the batch instead).

Modes:
  --mode train  (default) epoch training; after every epoch evaluates the test
                split (z is sampled, so test_loss is a one-sample negative ELBO)
                and prints one JSON object per line to stdout.
  --mode speed  throughput only: training images/s per batch size and eval
                images/s at batch 1024, one JSON object per line.

Diagnostics go to stderr so stdout is pure JSON lines.

Examples:
  python bench/pytorch_vae.py --dataset /usr/share/datasets/fashion-mnist --epochs 10
  python bench/pytorch_vae.py --mode speed --dataset /usr/share/datasets/fashion-mnist \
      --batch-sizes 128,1024 --seconds 5 --threads 2
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGE_MAGIC = 0x00000803  # IDX: unsigned byte, 3 dims
LABEL_MAGIC = 0x00000801  # IDX: unsigned byte, 1 dim
N_PIXELS = 28 * 28

EVAL_BATCH = 1024
WARMUP_STEPS = 20


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Data (IDX files, optionally gzipped)
# --------------------------------------------------------------------------

def _read_bytes(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read()


def read_idx_images(path):
    """IDX3: big-endian u32 magic 0x803, count, rows, cols, then u8 pixels.
    Returns float32 array (count, rows*cols) scaled to [0, 1]."""
    buf = _read_bytes(path)
    magic, n, rows, cols = np.frombuffer(buf, dtype=">u4", count=4, offset=0)
    if magic != IMAGE_MAGIC:
        raise ValueError(f"{path}: bad image magic {magic:#x}, want {IMAGE_MAGIC:#x}")
    if rows * cols != N_PIXELS:
        raise ValueError(f"{path}: images are {rows}x{cols}, want 28x28")
    pix = np.frombuffer(buf, dtype=np.uint8, count=int(n) * N_PIXELS, offset=16)
    return pix.reshape(int(n), N_PIXELS).astype(np.float32) / np.float32(255.0)


def read_idx_labels(path):
    """IDX1: big-endian u32 magic 0x801, count, then u8 labels."""
    buf = _read_bytes(path)
    magic, n = np.frombuffer(buf, dtype=">u4", count=2, offset=0)
    if magic != LABEL_MAGIC:
        raise ValueError(f"{path}: bad label magic {magic:#x}, want {LABEL_MAGIC:#x}")
    return np.frombuffer(buf, dtype=np.uint8, count=int(n), offset=8).copy()


# File name variants tried in order. The ".10k" variant covers a reduced MNIST
# train split shipped as train-images-idx3-ubyte.10k.gz.
_VARIANTS = ("", ".10k")
_EXTS = (".gz", "")


def _find_pair(directory, images_base, labels_base):
    """Find an (images, labels) pair using the same name variant for both, so a
    10k image file is never paired with a 60k label file."""
    for var in _VARIANTS:
        for ext in _EXTS:
            img = os.path.join(directory, images_base + var + ext)
            if not os.path.exists(img):
                continue
            for lext in _EXTS:
                lab = os.path.join(directory, labels_base + var + lext)
                if os.path.exists(lab):
                    return img, lab
            return img, None
    raise FileNotFoundError(f"no {images_base}[.10k][.gz] in {directory}")


def load_split(directory, split, images_override=None, labels_override=None):
    """Load one split ("train" or "t10k") as a float32 tensor (N, 784)."""
    if images_override:
        img_path, lab_path = images_override, labels_override
    else:
        img_path, lab_path = _find_pair(
            directory, f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte")
        if labels_override:
            lab_path = labels_override
    images = read_idx_images(img_path)
    msg = f"{split}: {images.shape[0]} images from {img_path}"
    if lab_path:
        labels = read_idx_labels(lab_path)  # unused by the VAE; sanity check only
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{img_path} has {images.shape[0]} images but "
                             f"{lab_path} has {labels.shape[0]} labels")
        msg += f" (labels {lab_path})"
    log(msg)
    return torch.from_numpy(images)


# --------------------------------------------------------------------------
# Model (mirrors the Rust model)
# --------------------------------------------------------------------------

class VAE(nn.Module):
    def __init__(self, hidden, latent):
        super().__init__()
        # Encoder: 784 -> H1 -> ... -> H_last, each Linear followed by ReLU.
        enc, d = [], N_PIXELS
        for h in hidden:
            enc += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.encoder = nn.Sequential(*enc)
        self.fc_mu = nn.Linear(d, latent)
        self.fc_logvar = nn.Linear(d, latent)
        # Decoder: L -> H_last -> ... -> H1 (ReLU after each), then fc_out -> 784 logits.
        dec, d = [], latent
        for h in reversed(hidden):
            dec += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.decoder = nn.Sequential(*dec)
        self.fc_out = nn.Linear(d, N_PIXELS)

    def forward(self, x):
        h = self.encoder(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        # Reparameterisation: z = mu + exp(0.5*logvar) * eps, eps ~ N(0, I)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.fc_out(self.decoder(z))
        return logits, mu, logvar


class ConvVAE(nn.Module):
    """The conv body of `vae train --arch conv`: Conv(3x3, stride 2, padding 1) + ReLU per
    entry of `channels`, flatten, dense layers, heads; the decoder mirrors it with dense layers
    up to the last feature map and ConvTranspose2d (output padding restoring each size), ReLU
    between them, the last to one channel of logits. Our engine flattens channels-last, PyTorch
    NCHW: the same network up to a permutation of fc1's inputs."""

    def __init__(self, channels, hidden, latent):
        super().__init__()
        enc, c, sides = [], 1, [28]
        for out in channels:
            enc += [nn.Conv2d(c, out, 3, stride=2, padding=1), nn.ReLU()]
            c = out
            sides.append((sides[-1] - 1) // 2 + 1)
        self.convs = nn.Sequential(*enc)
        self.map_shape = (c, sides[-1], sides[-1])
        flat = c * sides[-1] * sides[-1]
        dense, d = [], flat
        for h in hidden:
            dense += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.encoder = nn.Sequential(*dense)
        self.fc_mu = nn.Linear(d, latent)
        self.fc_logvar = nn.Linear(d, latent)
        dec, d = [], latent
        for h in list(reversed(hidden)) + [flat]:
            dec += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.decoder = nn.Sequential(*dec)
        deconvs, ins = [], [1] + list(channels)
        for i in reversed(range(len(channels))):
            small, big = sides[i + 1], sides[i]
            op = big - ((small - 1) * 2 - 2 + 3)
            deconvs.append(nn.ConvTranspose2d(ins[i + 1], ins[i], 3, stride=2, padding=1, output_padding=op))
            if i > 0:
                deconvs.append(nn.ReLU())
        self.deconvs = nn.Sequential(*deconvs)

    def forward(self, x):
        h = self.encoder(self.convs(x.view(-1, 1, 28, 28)).flatten(1))
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        maps = self.decoder(z).view(-1, *self.map_shape)
        return self.deconvs(maps).view(-1, N_PIXELS), mu, logvar


def make_model(args, hidden):
    if args.arch == "conv":
        return ConvVAE(args.channels, hidden, args.latent)
    return VAE(hidden, args.latent)


def loss_sums(logits, x, mu, logvar):
    """Return (recon, kl), each SUMMED over the batch (and over pixels/latents).

    recon_i = sum_p BCEWithLogits(logits_ip, x_ip)
            = sum_p [ max(l,0) - l*x + log(1 + exp(-|l|)) ]
    kl_i    = -0.5 * sum_j (1 + logvar_ij - mu_ij^2 - exp(logvar_ij))
    The training loss is (sum_i recon_i + kl_i) / batch_size, i.e. the mean
    per-image negative ELBO.
    """
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp())
    return recon, kl


def batch_loss(model, xb):
    """The mean per-image negative ELBO of a batch: the function `--compile` compiles."""
    logits, mu, logvar = model(xb)
    recon, kl = loss_sums(logits, xb, mu, logvar)
    return (recon + kl) / xb.shape[0]


def train_step(model, opt, xb, loss_fn=batch_loss):
    """One full step: forward, loss (mean over images), backward, Adam step.
    Returns the batch loss as a detached tensor (no host sync)."""
    loss = loss_fn(model, xb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


@torch.no_grad()
def evaluate(model, data, batch_size=EVAL_BATCH):
    """Mean per-image (loss, recon, kl) over `data`, with z sampled."""
    model.eval()
    recon_sum = torch.zeros((), dtype=torch.float64, device=data.device)
    kl_sum = torch.zeros((), dtype=torch.float64, device=data.device)
    for i in range(0, data.shape[0], batch_size):
        xb = data[i:i + batch_size]
        logits, mu, logvar = model(xb)
        recon, kl = loss_sums(logits, xb, mu, logvar)
        recon_sum += recon.double()
        kl_sum += kl.double()
    model.train()
    n = data.shape[0]
    recon, kl = recon_sum.item() / n, kl_sum.item() / n
    return recon + kl, recon, kl


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


# --------------------------------------------------------------------------
# Modes
# --------------------------------------------------------------------------

def run_train(args, device, hidden):
    train = load_split(args.dataset, "train", args.train_images, args.train_labels).to(device)
    test = load_split(args.dataset, "t10k", args.test_images, args.test_labels).to(device)
    model = make_model(args, hidden).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)  # shuffling stream
    n = train.shape[0]

    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(n, generator=gen).to(device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        sync(device)
        t0 = time.perf_counter()
        for i in range(0, n, args.batch_size):  # drop_last=False
            xb = train[perm[i:i + args.batch_size]]
            loss_sum += train_step(model, opt, xb).double() * xb.shape[0]
        sync(device)
        seconds = time.perf_counter() - t0
        train_loss = loss_sum.item() / n  # mean per image over the epoch

        test_loss, test_recon, test_kl = evaluate(model, test)
        print(json.dumps({
            "epoch": epoch,
            "train_loss": train_loss,
            "test_loss": test_loss,
            "test_recon": test_recon,
            "test_kl": test_kl,
            "seconds": seconds,
            "images_per_sec": n / seconds,
        }), flush=True)


def run_speed(args, device, hidden):
    if args.synthetic:
        g = torch.Generator().manual_seed(args.seed)
        data = torch.rand(args.synthetic_n, N_PIXELS, generator=g)
        log(f"synthetic: {data.shape[0]} uniform random images")
    else:
        data = load_split(args.dataset, "train", args.train_images, args.train_labels)
    data = data.to(device)
    n = data.shape[0]
    gen = torch.Generator().manual_seed(args.seed)
    # `--compile`: the forward pass and loss through torch.compile (inductor); autograd then
    # runs the compiled backward graph too. Adam stays eager (its fused CPU kernel).
    loss_fn = torch.compile(batch_loss, dynamic=False) if args.compile else batch_loss
    framework = "pytorch-compile" if args.compile else "pytorch"
    common = {"framework": framework, "torch_version": torch.__version__, "arch": args.arch,
              "threads": torch.get_num_threads(), "device": str(device),
              "hidden": hidden, "latent": args.latent}

    for bs in args.batch_sizes:
        model = make_model(args, hidden).to(device)  # fresh model per batch size
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        perm, pos = torch.randperm(n, generator=gen).to(device), 0

        def next_batch():
            # Shuffled minibatches drawn from the in-memory tensor; the gather
            # is part of the timed step, as in the epoch loop.
            nonlocal perm, pos
            if pos + bs > n:
                perm, pos = torch.randperm(n, generator=gen).to(device), 0
            xb = data[perm[pos:pos + bs]]
            pos += bs
            return xb

        for _ in range(WARMUP_STEPS):
            train_step(model, opt, next_batch(), loss_fn)
        sync(device)
        steps, t0 = 0, time.perf_counter()
        while True:
            train_step(model, opt, next_batch(), loss_fn)
            steps += 1
            if steps % 8 == 0 or device.type == "cpu":
                sync(device)
                elapsed = time.perf_counter() - t0
                if elapsed >= args.seconds:
                    break
        print(json.dumps({**common, "what": "train", "batch_size": bs, "steps": steps,
                          "seconds": elapsed, "images_per_sec": steps * bs / elapsed}),
              flush=True)

    # Evaluation throughput: forward with sampling + loss, no grad, batch 1024.
    bs = EVAL_BATCH
    model.eval()
    eval_fn = torch.compile(batch_loss, dynamic=False) if args.compile else batch_loss
    with torch.no_grad():
        def eval_step(i):
            return eval_fn(model, data[i:i + bs])

        starts = list(range(0, n - bs + 1, bs)) or [0]
        for k in range(WARMUP_STEPS):
            eval_step(starts[k % len(starts)])
        sync(device)
        steps, images, t0 = 0, 0, time.perf_counter()
        while True:
            i = starts[steps % len(starts)]
            eval_step(i)
            images += min(bs, n - i)
            steps += 1
            if steps % 8 == 0 or device.type == "cpu":
                sync(device)
                elapsed = time.perf_counter() - t0
                if elapsed >= args.seconds:
                    break
    print(json.dumps({**common, "what": "eval", "batch_size": bs, "steps": steps,
                      "seconds": elapsed, "images_per_sec": images / elapsed}),
          flush=True)


# --------------------------------------------------------------------------

def int_list(s):
    try:
        vals = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}")
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {s!r}")
    return vals


def main():
    p = argparse.ArgumentParser(
        description="PyTorch MLP VAE reference for the Rust `vae` trainer "
                    "(mirrors pytorch/examples vae/main.py; loss averaged over the batch).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--mode", choices=["train", "speed"], default="train",
                   help="train: epochs + test eval; speed: throughput only")
    p.add_argument("--dataset", default="/usr/share/datasets/fashion-mnist",
                   help="directory with the four IDX files (gzipped or not)")
    p.add_argument("--train-images", help="override path of the train images IDX file")
    p.add_argument("--train-labels", help="override path of the train labels IDX file")
    p.add_argument("--test-images", help="override path of the test images IDX file")
    p.add_argument("--test-labels", help="override path of the test labels IDX file")
    p.add_argument("--arch", choices=["mlp", "conv"], default="mlp",
                   help="dense layers only, or the conv body of `vae train --arch conv`")
    p.add_argument("--channels", type=int_list, default=[32, 64],
                   help="conv: output channels of the encoder's convolutions")
    p.add_argument("--hidden", type=int_list, default=None,
                   help="hidden layer widths, comma list (default: 400 for mlp, 256 for conv)")
    p.add_argument("--latent", type=int, default=20, help="latent dimension L")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=128, help="training batch size (train mode)")
    p.add_argument("--epochs", type=int, default=10, help="number of epochs (train mode)")
    p.add_argument("--batch-sizes", type=int_list, default=[128, 1024],
                   help="training batch sizes to time (speed mode)")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="timed seconds per measurement (speed mode)")
    p.add_argument("--synthetic", action="store_true",
                   help="speed mode: use uniform random data instead of the dataset")
    p.add_argument("--synthetic-n", type=int, default=60000,
                   help="number of synthetic images (speed mode)")
    p.add_argument("--compile", action="store_true",
                   help="speed mode: run the forward pass and loss through torch.compile")
    p.add_argument("--seed", type=int, default=0, help="seed for init, shuffling and sampling")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--device", default="cpu", help="torch device (the comparison is on cpu)")
    args = p.parse_args()

    if args.hidden is None:
        args.hidden = [256] if args.arch == "conv" else [400]
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}, "
        f"hidden {args.hidden}, latent {args.latent}")

    if args.mode == "train":
        run_train(args, device, args.hidden)
    else:
        run_speed(args, device, args.hidden)


if __name__ == "__main__":
    main()
