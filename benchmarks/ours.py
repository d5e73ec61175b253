"""Our recipe: quality against time while training, then inference throughput.

    python benchmarks/ours.py [--threads N] [--seed 0]

Trains the default recipe once (as `punktraits train` does) and prints, per epoch, the elapsed
seconds and the macro F1 on visible labels of the validation part and of the test split (the test
numbers are only printed here, never used to choose anything). Then measures images/s of the saved
model at batch 1 and batch 1,024 on RGBA input, palette snapping included.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from punktraits import data as D
from punktraits.files import read_json
from punktraits.metrics import f1_scores
from punktraits.recipes.ours import decide, rgba
from punktraits.run import Run, TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    punks = D.load(args.data_dir)
    print(f"cpu threads {torch.get_num_threads()}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        t = time.perf_counter()
        m = train(punks, TrainConfig(seed=args.seed, threads=args.threads), out, progress=False)
        wall = time.perf_counter() - t
        hist = read_json(out / "history.json")
        print(f"{'epoch':>5} {'seconds':>8} {'val macro F1 vis':>17} {'traits < 1':>11}")
        for e in hist["epochs"]:
            print(
                f"{e['epoch']:>5} {e['seconds']:>8.1f} {e['val_macro_f1']:>17.4f} "
                f"{e['val_traits_below_1']:>11}"
            )
        print(
            f"best epoch {hist['best_epoch']}; test macro F1 visible {m['macro_f1_visible']:.4f}, "
            f"official {m['macro_f1']:.4f} (ceiling {m['macro_f1_ceiling']:.4f}); "
            f"train {m['train_seconds']:.1f} s, whole command {wall:.1f} s"
        )
        model = Run.open(out).model
    test = D.split(punks.labels, seed=0)[1]  # the default split's test punks
    x = rgba(punks.images[test])
    with torch.inference_mode():
        for batch, reps in ((1, 500), (1024, 5)):
            xb = x[:batch] if batch > 1 else x[:1]
            model(xb)  # warm-up
            t = time.perf_counter()
            for _ in range(reps):
                model(xb)
            rate = reps * len(xb) / (time.perf_counter() - t)
            print(f"inference batch {batch:>5}: {rate:>10,.0f} images/s")
        prob = model.probabilities(model(x)).numpy()
    f1 = f1_scores(punks.visible[test], decide(prob))
    print(f"(check: test macro F1 visible from the reloaded model {f1.mean():.4f})")


if __name__ == "__main__":
    main()
