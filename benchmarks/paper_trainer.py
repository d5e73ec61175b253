"""Images/s of the paper recipe's trainer: K nets side by side (grouped) against one net at a time.

    python benchmarks/paper_trainer.py [--device cpu|cuda] [--threads N] [--steps 30]

Each configuration runs the real training step (PaperNets forward, MSE on the softmax, backward,
Adagrad) on batches of 100 real grey punks per net, in the same process, so the numbers compare
as ratios. The projection is the full protocol: 92 nets x 12 epochs x 16,000 examples.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from punktraits import data as D
from punktraits.models import PaperNets
from punktraits.recipes.paper import grey, mse_softmax

FULL = 92 * 12 * 16_000  # examples in the paper's protocol


def rate(k: int, steps: int, x_all: torch.Tensor, device: torch.device) -> float:
    """Net-images per second for a group of k nets, batch 100 each."""
    torch.manual_seed(0)
    model = PaperNets(k).to(device)
    opt = torch.optim.Adagrad(model.parameters(), lr=0.01, lr_decay=0.01)
    loss_fn = mse_softmax(1)
    gen = torch.Generator().manual_seed(0)
    batches = [
        torch.randint(len(x_all), (k, 100), generator=gen).to(device) for _ in range(steps + 3)
    ]
    y = torch.randint(0, 2, (100, k), device=device)

    def step(idx):
        out = model(x_all[idx].permute(1, 0, 2, 3))
        loss, _, _ = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for idx in batches[:3]:
        step(idx)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for idx in batches[3:]:
        step(idx)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * 100 * k / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--groups", default="1,4,23,92")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    punks = D.load(args.data_dir)
    x_all = torch.from_numpy(grey(punks.images)).to(device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    base = None
    for k in (int(g) for g in args.groups.split(",")):
        r = rate(k, args.steps if k > 1 else args.steps * 4, x_all, device)
        base = base or r
        label = "one net at a time" if k == 1 else f"{k} nets side by side"
        print(
            f"  {label:<22} {r:>10,.0f} img/s  x{r / base:5.2f}   full protocol "
            f"{FULL / r / 60:7.1f} min"
        )
    print(
        f"  (full protocol = 92 nets x 12 epochs x 16,000 = {FULL:,} examples; "
        f"mean of {args.steps} steps per configuration)"
    )


if __name__ == "__main__":
    main()
