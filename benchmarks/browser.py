"""Punks as a browser draws them: Chromium shows each punk's 24 px PNG in an <img> at a CSS size,
smoothed (`image-rendering: auto`, Skia's filter, not Pillow's) or `pixelated`, on the site
blue; each <img> is screenshotted as PNG and as JPEG, and `Predictor` reads the screenshots.

    PUNKTRAITS_DATA=../shared/data python benchmarks/browser.py [--n 100] [--seed 0] \\
        [--sizes 36,100,310] [--jpeg 85]

Needs Chromium at /usr/bin/chromium (`apt-get install -y chromium`) and Playwright (the test
extra). Right = head and visible accessories as in `benchmarks/renders.py --traits`; ms is the
whole prediction per image, one torch thread. Prints a Markdown table and the punks missed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: numpy's BLAS threads only wait

import argparse  # noqa: E402
import base64  # noqa: E402
import io  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from punktraits import data as D  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def page(punks: list[np.ndarray], size: int, rendering: str) -> str:
    """An HTML page with every punk as an <img> of size x size CSS pixels on the site blue."""
    imgs = []
    for i, punk in enumerate(punks):
        buf = io.BytesIO()
        Image.fromarray(punk, "RGBA").save(buf, format="PNG")
        src = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        imgs.append(f'<img id="p{i}" src="{src}" width="{size}" height="{size}">')
    style = (f"body{{margin:0;background:#638596}} img{{display:block;margin:8px;"
             f"image-rendering:{rendering}}}")  # fmt: skip
    return f"<!doctype html><html><head><style>{style}</style></head><body>{''.join(imgs)}</body></html>"


def shots(punks, sizes, jpeg: int, dsf: float = 1.0):
    """{(rendering, size, format): [bytes per punk]} from one headless Chromium."""
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        view = browser.new_page(viewport={"width": max(sizes) + 64, "height": 800},
                                device_scale_factor=dsf)  # fmt: skip
        for rendering in ("auto", "pixelated"):
            for size in sizes:
                view.set_content(page(punks, size, rendering))
                view.wait_for_function("[...document.images].every(i => i.complete)")
                for fmt in ("png", f"jpeg{jpeg}"):
                    kw = {"type": "png"} if fmt == "png" else {"type": "jpeg", "quality": jpeg}
                    out[rendering, size, fmt] = [
                        view.locator(f"#p{i}").screenshot(**kw) for i in range(len(punks))
                    ]
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--n", type=int, default=100, help="random punks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", default="36,100,310")
    ap.add_argument("--jpeg", type=int, default=85, help="JPEG quality of the screenshots")
    ap.add_argument(
        "--dsf",
        type=float,
        default=1.0,
        help="device scale factor (2: a high-density screen's screenshot)",
    )
    ap.add_argument("--save", default=None, help="also write the screenshots to this folder")
    args = ap.parse_args()

    import torch

    from punktraits.predict import Predictor
    from punktraits.sprites import heads_of

    torch.set_num_threads(1)
    punks = D.load(args.data_dir)
    model = Predictor(data_dir=args.data_dir)
    heads = heads_of(punks)
    ids = np.random.default_rng(args.seed).choice(len(punks), args.n, replace=False)
    want = [(heads[i], {a for a in punks.layers[i] if not punks.hidden[i, D.TRAIT_INDEX[a]]})
            for i in ids]  # fmt: skip
    start = time.perf_counter()
    files = shots([punks.images[i] for i in ids], [int(s) for s in args.sizes.split(",")],
                  args.jpeg, args.dsf)  # fmt: skip
    print(f"{args.n} random punks (seed {args.seed}), device scale {args.dsf:g}, "
          "screenshotted by Chromium in "
          f"{time.perf_counter() - start:.0f} s; right = head and visible accessories\n")  # fmt: skip
    print("| image-rendering | CSS size | screenshot | right | verified | refused | filter named "
          "| ms/image |\n|---|---|---|--:|--:|--:|---|--:|")  # fmt: skip
    misses = []
    for (rendering, size, fmt), data in files.items():
        if args.save:
            os.makedirs(args.save, exist_ok=True)
            for i, b in zip(ids, data):
                name = f"{rendering}-{size}-{i}.{fmt[:4].replace('jpeg', 'jpg')}"
                with open(os.path.join(args.save, name), "wb") as f:
                    f.write(b)
        start = time.perf_counter()
        preds = model.predict_batch(data)
        seconds = time.perf_counter() - start
        ok = [p.error is None and (p.head, set(p.accessories)) == w for p, w in zip(preds, want)]
        refused = [int(i) for i, p in zip(ids, preds) if p.error is not None]
        filters = {}
        for p in preds:
            if p.normalized:
                f = p.normalized["filter"]
                filters[f] = filters.get(f, 0) + 1
        named = ", ".join(f"{f} {c}" for f, c in sorted(filters.items(), key=lambda x: -x[1]))
        print(f"| {rendering} | {size} | {fmt} | {sum(ok) / len(ok):.0%} | "
              f"{sum(bool(p.verified) for p in preds) / len(preds):.0%} | {len(refused)} | "
              f"{named} | {seconds / len(preds) * 1000:.0f} |", flush=True)  # fmt: skip
        wrong = [int(i) for i, p, o in zip(ids, preds, ok) if not o and p.error is None]
        if wrong or refused:
            first = next((p.error for p in preds if p.error), None)
            misses.append(f"{rendering} {size} {fmt}: wrong {wrong}, refused {refused}"
                          + (f" (e.g. {first})" if first else ""))  # fmt: skip
    if misses:
        print("\npunks not read right (ids):\n" + "\n".join(f"- {m}" for m in misses))


if __name__ == "__main__":
    main()
