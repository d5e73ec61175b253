"""Issue 8's search for a network that is right alone: train `--recipe ours` under several settings
and seeds, and score each run on the test split and on never-seen combinations.

    PUNKTRAITS_DATA=../shared/data python benchmarks/sweep_ours.py --device cuda --jobs 8 \\
        --grid '{"drawn": [20000, 60000], "width": [32, 64]}' --seeds 0 1 2 --out sweep.jsonl

Every combination of the grid's values (or of each grid's, given a list) is trained with every seed (keys: drawn, drawn_share,
epochs, batch_size, split_seed and the recipe's --set knobs lr, embed, width, hidden, temper). Each run writes
one JSON line: its settings, seconds, the test split's official macro F1 and its ceiling, exact
match on visible labels, the traits whose visible F1 is below 1, head accuracy, and the network
alone's exact match (type, head, visible accessories) on `--new` punks of combinations none of the
10,000 have, drawn with seed 99 by sprites learned from the training split. Nothing here chooses
with the test split: it only reports.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

RUN_KEYS = {"drawn", "drawn_share", "epochs", "batch_size", "dry_run", "split_seed"}


def new_punks(punks, train_ids, n: int, seed: int = 99):
    """`n` punks of combinations none of the 10,000 have: images, heads, visible accessories."""
    from punktraits.sprites import heads_of, sprites_for

    sprites = sprites_for(punks, train_ids)
    combos = sprites.sample(n, np.random.default_rng(seed),
                            exclude=list(zip(heads_of(punks), punks.layers)))  # fmt: skip
    images, _ = sprites.render_many(combos)
    return images, [h for h, _ in combos], [set(v) for v in sprites.visible(combos, images)]


def network_exact(run, images, heads, visible) -> np.ndarray:
    """Per punk: the network alone got the type, the head and the visible accessories right."""
    from punktraits import data as D

    prob, head_prob = run.predict(images)
    pred = run.decide(prob)
    traits = run.config["traits"]
    out = np.zeros(len(images), bool)
    for i in range(len(images)):
        acc = {traits[j] for j in np.flatnonzero(pred[i]) if j >= len(D.TYPES)}
        kind = traits[int(prob[i, : len(D.TYPES)].argmax())]
        head_ok = head_prob is None or run.heads[int(head_prob[i].argmax())] == heads[i]
        out[i] = acc == visible[i] and kind == heads[i].split()[0] and head_ok
    return out


def one(job: dict) -> dict:
    import torch

    from punktraits import data as D
    from punktraits.run import Run, TrainConfig

    torch.set_num_threads(job.pop("threads"))
    data_dir, device, n_new, seed = (
        job.pop("data_dir"),
        job.pop("device"),
        job.pop("new"),
        job.pop("seed"),
    )
    run_kw = {k: job[k] for k in RUN_KEYS if k in job}
    extra = {k: v for k, v in job.items() if k not in RUN_KEYS}
    punks = D.load(data_dir)
    cfg = TrainConfig(seed=seed, device=device, extra=extra, **run_kw)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        run = Run.create(punks, cfg, Path(tmp) / "run", progress=False)
        seconds = time.perf_counter() - t
        m = run.metrics()
        hist = run.history
        images, heads, visible = new_punks(punks, run.split.train, n_new)
        new_ok = network_exact(run, images, heads, visible)
    below = {t: round(v["f1_visible"], 4) for t, v in m["per_trait"].items() if v["f1_visible"] < 1}
    return {
        "seed": seed, **job, "train_seconds": hist["train_seconds"],
        "seconds_with_eval": round(seconds, 1), "epochs_run": len(hist["epochs"]),
        "best_epoch": hist["best_epoch"], "steps": hist["steps_per_epoch"] * len(hist["epochs"]),
        "val_best": max(e["val_macro_f1"] for e in hist["epochs"]), "macro_f1": round(m["macro_f1"], 5),
        "ceiling": round(m["macro_f1_ceiling"], 5),
        "exact_visible": m["exact_match_visible"], "head_accuracy": m.get("head_accuracy"),
        "below_1": below, "new_exact": round(float(new_ok.mean()), 5),
        "new_wrong": int((~new_ok).sum()),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("PUNKTRAITS_DATA"))
    ap.add_argument(
        "--grid", default="{}", help="JSON: setting -> list of values, or a list of such grids"
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (processes)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    ap.add_argument("--new", type=int, default=2000, help="never-seen punks to score")
    ap.add_argument("--out", default=None, help="append JSON lines here too")
    args = ap.parse_args()

    from punktraits import data as D
    from punktraits.data import split
    from punktraits.sprites import sprites_for

    grids = json.loads(args.grid)
    grids = grids if isinstance(grids, list) else [grids]
    punks = D.load(args.data_dir)
    sprites_for(punks, split(punks.labels, n_test=2000, seed=0)[0])  # learn and cache them once
    jobs = [
        {**dict(zip(grid, values)), "seed": s, "data_dir": args.data_dir, "device": args.device,
         "threads": args.threads, "new": args.new}
        for grid in grids for values in itertools.product(*grid.values()) for s in args.seeds
    ]  # fmt: skip
    print(f"{len(jobs)} runs, {args.jobs} at a time on {args.device}", file=sys.stderr)
    out = open(args.out, "a") if args.out else None
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(one, dict(j)): j for j in jobs}
        for f in as_completed(futures):
            try:
                line = json.dumps(f.result())
            except Exception as e:  # one failed setting must not lose the others
                line = json.dumps({"job": {k: v for k, v in futures[f].items()},
                                   "error": f"{type(e).__name__}: {e}"})  # fmt: skip
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()


if __name__ == "__main__":
    main()
