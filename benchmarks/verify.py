"""Issue 8's figures: the network alone and the verified answers, on the test split and on new
punks whose combination of accessories is none of the 10,000.

    PUNKTRAITS_DATA=../shared/data python benchmarks/verify.py [--model RUN] [--n 2000] [--seed 99]

Prints, for each set: exact match of the network alone (type, head, visible accessories),
answers verified, verified-but-wrong (must be 0), exact match of the final answers, and the
milliseconds per image that drawing back costs.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from sweep_ours import network_exact, new_punks  # the same scoring as the sweep's

from punktraits import data as D
from punktraits.predict import Predictor
from punktraits.sprites import heads_of


def score(name: str, model: Predictor, images: np.ndarray, heads: list[str], visible: list[set]):
    t = time.perf_counter()
    net_right = network_exact(model.run, images, heads, visible)
    net_s = time.perf_counter() - t
    t = time.perf_counter()
    preds = model.predict_punks(images)
    all_s = time.perf_counter() - t
    final = [p.head == heads[i] and set(p.accessories) == visible[i] for i, p in enumerate(preds)]
    verified = [bool(p.verified) for p in preds]
    wrong_verified = sum(v and not f for v, f in zip(verified, final))
    n = len(images)
    print(f"{name}: {n:,} punks")
    print(f"  network alone, exact match (type, head, visible accessories): "
          f"{sum(net_right) / n:.2%} ({n - sum(net_right)} wrong)")  # fmt: skip
    print(f"  verified {sum(verified):,}; verified but wrong {wrong_verified}; corrected "
          f"{sum(bool(p.check and p.check.get('corrected_from')) for p in preds)}; "
          f"refused {sum(p.error is not None for p in preds)}")  # fmt: skip
    print(f"  final answers exact: {sum(final) / n:.2%} ({n - sum(final)} wrong)")
    print(f"  drawing back: {(all_s - net_s) / n * 1e3:.2f} ms per image "
          f"(network {net_s / n * 1e3:.2f} ms per image)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--model", default=None, help="run folder (default: the shipped model)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=99, help="never a training seed")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    punks = D.load(args.data_dir)
    model = Predictor(args.model, data_dir=args.data_dir)
    heads = heads_of(punks)
    test = model.run.split.test
    vis = [{D.TRAITS[j] for j in np.flatnonzero(punks.visible[i]) if j >= len(D.TYPES)}
           for i in test]  # fmt: skip
    score("test split", model, punks.images[test], [heads[i] for i in test], vis)

    # New combinations: none of the 10,000 label sets, drawn with sprites of the training split.
    images, new_heads, vis = new_punks(punks, model.run.split.train, args.n, args.seed)
    score(f"new combinations (seed {args.seed})", model, images, new_heads, vis)


if __name__ == "__main__":
    main()
