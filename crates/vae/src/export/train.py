"""Continue training a model exported by `vae export RUN --pytorch DIR`.

    python train.py --data images.npy [--labels labels.npy] [--epochs 10] [--device cuda]
    torchrun --nproc_per_node=4 train.py --data images.npy ...   # several GPUs or machines

`--data` is an NPY array: N x H x W or N x H x W x C images (uint8 0-255 or floats in
[0, 1], channels last as `vae` reads them), or N x D vectors. A CVAE needs `--labels`, an
NPY array of N class indices. Under torchrun each process takes its share of every epoch
(DistributedDataParallel); the first writes the weights (`--out`, default
model-trained.safetensors), in the layout model.py loads.
"""

import argparse
import os

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from model import Model


def images(path, config):
    array = np.load(path)
    x = torch.from_numpy(array.astype(np.float32))
    if array.dtype == np.uint8:
        x = x / 255.0
    if len(config["input"]) == 3:
        if x.dim() == 3:
            x = x.unsqueeze(-1)
        x = x.permute(0, 3, 1, 2).contiguous()
    return x.reshape(x.shape[0], *config["input"])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--labels")
    p.add_argument("--weights", default=os.path.join(here, "model.safetensors"))
    p.add_argument("--out", default="model-trained.safetensors")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffling and the draws of z")
    args = p.parse_args()
    torch.manual_seed(args.seed)

    distributed = "WORLD_SIZE" in os.environ
    rank = 0
    device = torch.device(args.device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank = dist.get_rank()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)

    model = Model()
    model.load_state_dict(load_file(args.weights))
    model.to(device)
    x = images(args.data, model.config)
    tensors = [x]
    if model.config["classes"]:
        if not args.labels:
            p.error("a cvae trains on labelled images: pass --labels")
        y = torch.from_numpy(np.load(args.labels).astype(np.int64))
        tensors.append(F.one_hot(y, model.config["classes"]).float())
    data = TensorDataset(*tensors)
    sampler = DistributedSampler(data) if distributed else None
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler)
    trained = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
        total, seen = 0.0, 0
        for batch in loader:
            xb = batch[0].to(device)
            label = batch[1].to(device) if len(batch) > 1 else None
            # Through the DDP wrapper, so that the gradients are averaged across processes.
            out = trained(xb, label)
            loss = model.loss_from(out, xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
            seen += xb.shape[0]
        if rank == 0:
            print(f"epoch {epoch}/{args.epochs}  train loss {total / seen:.3f} per image", flush=True)
    if rank == 0:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, args.out)
        print(args.out)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
