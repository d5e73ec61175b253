"""How many punks `find` reads right in page-like screenshots, how many squares it makes up, and
how fast; and the punks.png sheet (10,000 punks at x1) timed.

    python benchmarks/screenshots.py [--pages 30] [--seed 0] [--jpeg] [--sheet]

Each page (seeded, same pixels for a seed) is a light or dark page of text lines, buttons and
photo-like gradients with 3 to 10 punks placed apart, each on its own square of a site colour
(mostly the blue #638596), with a caption under it (the square and its caption kept 8 px
clear of everything else): sizes from 48 to 336 px, drawn nearest
(whole-number scales) or smoothed (bilinear, bicubic, lanczos at any size), one in ten mirrored;
saved as PNG, or as JPEG quality 90 (one page in three; every page with --jpeg: the same pages,
the PNG ones saved as JPEG too). A punk is found when an answer's box
overlaps its square by more than half, read right when that answer is the original (exact pixel
lookup) with its visible labels and the right `mirrored`. A false detection is an answer with no
punk under it. Seconds are `Predictor.find` per page, on whatever CPU runs it. Prints Markdown.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: numpy's BLAS threads only wait

import argparse  # noqa: E402
import io  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from punktraits import data as D  # noqa: E402
from punktraits import load_model  # noqa: E402
from punktraits.predict import _overlap  # noqa: E402

SITE = [(0x63, 0x85, 0x96)] * 4 + [(0x95, 0x55, 0x4F), (0x8E, 0x6F, 0xB6), (0x6E, 0x96, 0x6B)]
SMOOTH = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
WORDS = "punk bid offer sale ETH floor owner history wrapped Larva Labs market volume".split()


def tile(punk: np.ndarray, side: int, bg, resample) -> Image.Image:
    im = Image.fromarray(punk, "RGBA").resize((side, side), resample)
    square = Image.new("RGBA", (side, side), bg + (255,))
    square.alpha_composite(im)
    return square.convert("RGB")


def make_page(rng: np.random.Generator, images: np.ndarray, jpeg: bool = False):
    """(encoded bytes, format, truth [(id, box, mirrored, how)]); `jpeg`: always JPEG."""
    w, h = int(rng.integers(900, 1500)), int(rng.integers(700, 1100))
    dark = rng.random() < 0.3
    im = Image.new("RGB", (w, h), (24, 26, 30) if dark else (250, 250, 247))
    ink = (230, 230, 230) if dark else (20, 20, 20)
    d = ImageDraw.Draw(im)
    taken: list[list[int]] = []

    def place(bw: int, bh: int):
        for _ in range(60):
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            if all(_overlap([x - 8, y - 8, bw + 16, bh + 16], t) == 0 for t in taken):
                taken.append([x, y, bw, bh])
                return x, y
        return None

    for _ in range(int(rng.integers(2, 5))):  # photos: gradients with noise
        pw, ph = int(rng.integers(120, 320)), int(rng.integers(90, 240))
        at = place(pw, ph)
        if at:
            yy, xx = np.mgrid[0:ph, 0:pw]
            c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            t = (xx / pw * 0.6 + yy / ph * 0.4)[..., None]
            photo = c0 * (1 - t) + c1 * t + rng.normal(0, 6, (ph, pw, 3))
            im.paste(Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)), at)
    truth = []
    for _ in range(int(rng.integers(3, 11))):
        i = int(rng.integers(0, len(images)))
        how = "nearest" if rng.random() < 0.5 else str(rng.choice(list(SMOOTH)))
        side = (
            int(rng.choice([48, 72, 96, 120, 144, 168, 192, 240]))
            if how == "nearest"
            else int(rng.integers(48, 337))
        )
        caption = f"#{i} {rng.integers(1, 99)} ETH"
        # the caption's own width is kept clear too: wider than a small square, it once wrote
        # over the next punk's corner (#4361, seed 0 page 29, before 2026-11-28)
        at = place(max(side, int(d.textlength(caption)) + 1), side + 16)
        if at is None:
            continue
        mirrored = bool(rng.random() < 0.1)
        punk = images[i][:, ::-1].copy() if mirrored else images[i]
        bg = SITE[int(rng.integers(0, len(SITE)))]
        resample = Image.NEAREST if how == "nearest" else SMOOTH[how]
        im.paste(tile(punk, side, bg, resample), at)
        d.text((at[0], at[1] + side + 3), caption, fill=ink)
        truth.append((i, [at[0], at[1], side, side], mirrored, how))
    for _ in range(int(rng.integers(8, 20))):  # text lines and buttons
        words = " ".join(rng.choice(WORDS, int(rng.integers(2, 8))))
        at = place(7 * len(words), 14)
        if at:
            d.text(at, words, fill=ink)
    for _ in range(int(rng.integers(2, 6))):
        at = place(120, 36)
        if at:
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            d.rounded_rectangle((at[0], at[1], at[0] + 119, at[1] + 35), 8, fill=colour)
            d.text((at[0] + 20, at[1] + 12), str(rng.choice(WORDS)).title(), fill=(255, 255, 255))
    fmt = "JPEG" if rng.random() < 1 / 3 or jpeg else "PNG"
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue(), fmt, truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--pages", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jpeg", action="store_true", help="every page saved as JPEG q90")
    ap.add_argument("--sheet", action="store_true", help="also time punks.png (10,000 punks)")
    args = ap.parse_args()
    punks = D.load(args.data_dir, download=False, progress=False)
    model = load_model()
    rng = np.random.default_rng(args.seed)
    by = defaultdict(lambda: [0, 0, 0])  # kind -> [punks, found, read right]
    false, errors, seconds, n_punks = 0, 0, 0.0, 0
    misses = []
    for k in range(args.pages):
        data, fmt, truth = make_page(rng, punks.images, args.jpeg)
        t = time.perf_counter()
        answers = model.find(data, f"page{k}.{fmt.lower()}")
        seconds += time.perf_counter() - t
        used = set()
        for i, box, mirrored, how in truth:
            n_punks += 1
            hit = next((a for a in answers if a.box and _overlap(a.box, box) > 0.5), None)
            right = (
                hit is not None and hit.error is None and hit.original is not None
                and hit.original["id"] == i and hit.original["agrees_visible"]
                and hit.mirrored == mirrored
            )  # fmt: skip
            for kind in ("all", how if how == "nearest" else "smoothed", fmt,
                         "mirrored" if mirrored else "as is"):  # fmt: skip
                by[kind][0] += 1
                by[kind][1] += hit is not None
                by[kind][2] += right
            if hit is not None:
                used.add(id(hit))
            if not right:
                misses.append((k, fmt, i, box, how, mirrored, None if hit is None else
                               (hit.box, hit.head, hit.error, hit.check)))  # fmt: skip
        false += sum(a.error is None and a.box is not None and id(a) not in used for a in answers)
        errors += sum(a.error is not None and a.box is not None for a in answers)
    print(f"{args.pages} pages, {n_punks} punks, seed {args.seed}\n")
    print("| punks | n | found | read right |")
    print("|---|---:|---:|---:|")
    for kind in ("all", "nearest", "smoothed", "PNG", "JPEG", "as is", "mirrored"):
        n, f, r = by[kind]
        if n:
            print(f"| {kind} | {n} | {100 * f / n:.1f}% | {100 * r / n:.1f}% |")
    print(f"\nfalse detections: {false}; ambiguous-square errors: {errors}; "
          f"find: {seconds:.1f} s for {args.pages} pages ({seconds / args.pages:.2f} s a page)")  # fmt: skip
    for m in misses[:20]:
        print("missed or wrong:", m)
    if args.sheet:
        data = (punks.data_dir / "punks.png").read_bytes()
        t = time.perf_counter()
        answers = model.find(data, "punks.png")
        took = time.perf_counter() - t
        right = sum(a.box == [(a.original or {}).get("id", -1) % 100 * 24,
                              (a.original or {}).get("id", -1) // 100 * 24, 24, 24]
                    and a.original["agrees_visible"] and a.verified for a in answers)  # fmt: skip
        print(f"\npunks.png: {len(answers):,} answers, {right:,} right (the original at its "
              f"place, visible labels, verified), {took:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
