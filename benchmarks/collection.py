"""Issue 10's figures: the on-chain string and the original's id of real punks read from renders.

    PUNKTRAITS_DATA=../shared/data python benchmarks/collection.py [--n 10000] [--jpeg-n 1000] [--only x8jpeg]

For every punk (or the first --n), renders ×1 PNG, ×8 PNG on the site blue and ×8 JPEG (q85) on
the blue, predicts them with the shipped model, and counts: the on-chain string equal to
punkAttributes on the visible traits (the painted-over ones cannot be seen: those punks are
listed), and `original.id` equal to the punk's id. Prints seconds per image.
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np
from PIL import Image

from punktraits import data as D
from punktraits.collection import onchain
from punktraits.predict import Predictor
from punktraits.sprites import heads_of

BLUE = (0x63, 0x85, 0x96, 255)


def render(punk: np.ndarray, scale: int, fmt: str) -> bytes:
    img = Image.fromarray(punk, "RGBA")
    if scale > 1:
        img = img.resize((24 * scale, 24 * scale), Image.NEAREST)
        img = Image.alpha_composite(Image.new("RGBA", img.size, BLUE), img).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--jpeg-n", type=int, default=10_000, help="punks read as ×8 JPEG")
    ap.add_argument(
        "--only",
        choices=["x1", "x8png", "x8jpeg"],
        action="append",
        help="run only these renders (repeatable; default: all three)",
    )
    args = ap.parse_args()
    punks = D.load(args.data_dir)
    model = Predictor(data_dir=args.data_dir)
    heads = heads_of(punks)
    shown = [
        ", ".join(
            [heads[i]] + [a for a in punks.layers[i] if not punks.hidden[i, D.TRAIT_INDEX[a]]]
        )
        for i in range(len(punks))
    ]
    full = [", ".join([heads[i], *punks.layers[i]]) for i in range(len(punks))]
    renders = {
        "x1": ("x1 PNG", 1, "PNG", args.n),
        "x8png": ("x8 PNG", 8, "PNG", args.n),
        "x8jpeg": ("x8 JPEG q85", 8, "JPEG", min(args.n, args.jpeg_n)),
    }
    for label, scale, fmt, n in [renders[k] for k in args.only or renders]:
        ids = range(n)
        t = time.perf_counter()
        preds = model.predict_batch(render(punks.images[i], scale, fmt) for i in ids)
        sec = (time.perf_counter() - t) / n
        strings = [None if p.error else onchain(p.head, p.accessories) for p in preds]
        right = sum(s == shown[i] for i, s in zip(ids, strings))
        equal_full = sum(s == full[i] for i, s in zip(ids, strings))
        originals = sum(bool(p.original) and p.original["id"] == i for i, p in zip(ids, preds))
        refused = [i for i, p in zip(ids, preds) if p.error]
        wrong = [i for i, s in zip(ids, strings) if s is not None and s != shown[i]]
        print(f"{label}: {n:,} punks, {sec * 1e3:.1f} ms per image")
        print(f"  onchain string = punkAttributes on the visible traits: {right:,}; "
              f"= punkAttributes itself: {equal_full:,} (the rest have a painted-over accessory)")  # fmt: skip
        print(
            f"  original.id right: {originals:,}; verified: {sum(bool(p.verified) for p in preds):,}"
        )
        print(f"  refused: {len(refused)} {refused[:10]}; wrong strings: {len(wrong)} {wrong[:10]}")
        lost = [(i, p.original and p.original["id"], p.nearest, p.verified, p.check)
                for i, p in zip(ids, preds) if not (p.original and p.original["id"] == i)]  # fmt: skip
        print(f"  original.id not right: {len(lost)} {lost[:10]}")
    hidden = np.flatnonzero(punks.hidden[: args.n].any(1))
    print(f"punks with a painted-over accessory ({len(hidden)}): {hidden.tolist()}")


if __name__ == "__main__":
    main()
