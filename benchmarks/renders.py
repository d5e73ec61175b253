"""How exactly `normalize` reads punks back from renders made every common way, and how fast;
with --traits, how often `Predictor` gets every visible trait right from them.

    python benchmarks/renders.py [--n 200] [--seed 0] [--filters nearest,bicubic]
        [--sizes 36,100,310] [--formats png,jpeg85,webp80] [--backgrounds blue,transparent]
        [--traits [--workers N]]

Each of N random real punks (seeded) is resized from 24 px to size x size with a Pillow filter,
as a browser draws it (with its transparency), then put on the site blue #638596 or left
transparent, and saved as PNG, JPEG or WebP at a quality (JPEG has no transparency: always on
blue). Exact means the normalised 24x24 RGBA punk equals the original crop, every pixel; ms is
normalize() alone, one thread, per image. Prints a Markdown table.

--traits: instead, each render goes through `Predictor.predict_batch` (normalise, network, drawn
back; the shipped model, one torch thread) and the table counts answers whose head and
accessories equal the punk's visible labels (painted-over accessories cannot be seen), answers
verified (pixel for pixel, or a small lossy file given back exactly by its drawing re-encoded,
and by no other drawing one edit away), refusals, and ms per image for the whole prediction;
the punks not read right are listed under it, with the ties among them (another drawing, the
right one, gives the file back exactly too: the answer is not verified and names it) and any
wrong answer that was verified all the same (a proof that is not one: it must stay empty).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: numpy's BLAS threads only wait

import argparse  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from punktraits import data as D  # noqa: E402
from punktraits.errors import ImageError  # noqa: E402
from punktraits.normalize import FILTERS, collection_palette, normalize  # noqa: E402

BLUE = (0x63, 0x85, 0x96)


def render(punk: np.ndarray, filt: str, size: int, fmt: str, background: str) -> bytes:
    """The punk drawn at size x size with `filt`, on `background`, encoded as `fmt`."""
    im = Image.fromarray(punk, "RGBA")
    if filt == "area":  # a 1024 px nearest render, box-filtered down (an area average)
        im = im.resize((1024, 1024), Image.NEAREST).resize((size, size), Image.BOX)
    else:
        im = im.resize((size, size), FILTERS[filt][0])
    if background == "blue" or fmt.startswith("jpeg"):
        canvas = Image.new("RGBA", im.size, BLUE + (255,))
        canvas.alpha_composite(im)
        im = canvas.convert("RGB")
    buf = io.BytesIO()
    if fmt == "png":
        im.save(buf, format="PNG")
    elif fmt.startswith("jpeg"):
        im.save(buf, format="JPEG", quality=int(fmt[4:]))
    elif fmt.startswith("webp"):
        im.save(buf, format="WEBP", quality=int(fmt[4:]))
    else:
        raise SystemExit(f"unknown format {fmt!r} (png, jpegQ, webpQ)")
    return buf.getvalue()


def cells(args):
    """(filter, size, format, background) of every row asked for (JPEG has no transparency)."""
    for filt in args.filters.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            for fmt in args.formats.split(","):
                for bg in args.backgrounds.split(","):
                    if not (bg == "transparent" and fmt.startswith("jpeg")):
                        yield filt, size, fmt, bg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--n", type=int, default=200, help="random punks per configuration")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--filters", default=",".join(FILTERS))
    ap.add_argument("--sizes", default="36,53,100,152,192,310,960")
    ap.add_argument("--formats", default="png,jpeg85,webp80")
    ap.add_argument("--backgrounds", default="blue", help="blue and/or transparent")
    ap.add_argument("--traits", action="store_true", help="score Predictor's answers instead")
    ap.add_argument("--workers", type=int, default=1,
                    help="--traits: processes, each with its own Predictor and one torch thread "
                    "(ms/image stays the time of one core per image)")  # fmt: skip
    args = ap.parse_args()
    if args.traits:
        return traits(args)
    punks = D.load(args.data_dir)
    palette, counts = collection_palette(punks.images)
    ids = np.random.default_rng(args.seed).choice(len(punks), args.n, replace=False)
    print(f"{args.n} random punks (seed {args.seed}); exact = every pixel of the 24x24 RGBA punk\n")
    print("| filter | size (scale) | format | background | exact | filter named | ms/image |")
    print("|---|---|---|---|--:|--:|--:|")
    for filt, size, fmt, bg in cells(args):
        exact = named = 0
        seconds = 0.0
        for i in ids:
            data = render(punks.images[i], filt, size, fmt, bg)
            start = time.perf_counter()
            try:
                out, info = normalize(data, palette, counts)
            except ImageError:
                out, info = None, None
            seconds += time.perf_counter() - start
            exact += out is not None and bool((out == punks.images[i]).all())
            named += info is not None and info.filter == filt
        print(
            f"| {filt} | {size} (x{size / 24:.3g}) | {fmt} | {bg} | "
            f"{exact / len(ids):.1%} | {named / len(ids):.0%} | "
            f"{seconds / len(ids) * 1000:.0f} |",
            flush=True,
        )


_MODEL = None  # a worker process's Predictor (--workers)


def _start(data_dir, worker: bool = False) -> None:
    global _MODEL
    import torch

    from punktraits.folder import exit_with_parent
    from punktraits.predict import Predictor

    if worker:  # (this run killed, no worker goes on with its shards)
        exit_with_parent()
    torch.set_num_threads(1)
    _MODEL = Predictor(data_dir=data_dir)


def _predict(files: list[bytes]) -> tuple[list, float]:
    """Answers (without their drawings) and the seconds they took in this process."""
    start = time.perf_counter()
    preds = _MODEL.predict_batch(files)
    seconds = time.perf_counter() - start
    for p in preds:
        p.drawn = None
    return preds, seconds


def _tally(ids, preds, want) -> dict:
    """What the answers `preds` for punks `ids` got right, against `want` (head, visible)."""
    wrong, refused, tied, proven = [], [], [], []
    for i, p in zip(map(int, ids), preds):
        if p.error is not None:
            refused.append(i)
        elif (p.head, set(p.accessories)) != want[i]:
            wrong.append(i)
            # a drawing that gives the file back exactly is named beside the answer: the file
            # cannot tell the two apart
            if (p.check or {}).get("ties"):
                tied.append(i)
            # verified all the same: its drawing gives the file back and none an edit away
            # does on the same background, but the truth does on another (no proof)
            if p.verified:
                proven.append(i)
    return {"n": len(preds), "right": len(preds) - len(wrong) - len(refused), "wrong": wrong,
            "refused": refused, "tied": tied, "proven": proven,
            "verified": sum(bool(p.verified) for p in preds)}  # fmt: skip


def traits(args) -> None:
    from punktraits.sprites import heads_of

    punks = D.load(args.data_dir)
    pool = None
    if args.workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # (a worker that cannot start breaks the pool: an error, not a wait)
        pool = ProcessPoolExecutor(args.workers, multiprocessing.get_context("spawn"), _start,
                                   (args.data_dir, True))  # fmt: skip
    else:
        _start(args.data_dir)
    heads = heads_of(punks)
    ids = np.random.default_rng(args.seed).choice(len(punks), args.n, replace=False)
    want = {
        int(i): (heads[i], {a for a in punks.layers[i] if not punks.hidden[i, D.TRAIT_INDEX[a]]})
        for i in ids
    }
    print(f"{args.n} random punks (seed {args.seed}); right = head and visible accessories\n")
    print("| filter | size (scale) | format | background | right | verified | refused | ms/image |")
    print("|---|---|---|---|--:|--:|--:|--:|")
    misses = []
    for filt, size, fmt, bg in cells(args):
        files = [render(punks.images[i], filt, size, fmt, bg) for i in ids]
        if pool is None:
            preds, seconds = _predict(files)
        else:  # shards of 25 in order; ms/image: the sum of the workers' own times
            preds, seconds = [], 0.0
            for part, t in pool.map(
                _predict, [files[k : k + 25] for k in range(0, len(files), 25)]
            ):
                preds += part
                seconds += t
                if len(preds) % 1000 == 0:  # so far, on stderr (a run cut short keeps them)
                    print(f"{filt} {size} {fmt} {bg}: {_tally(ids, preds, want)}",
                          file=sys.stderr, flush=True)  # fmt: skip
        t = _tally(ids, preds, want)
        print(
            f"| {filt} | {size} (x{size / 24:.3g}) | {fmt} | {bg} | "
            f"{t['right'] / len(ids):.1%} | {t['verified'] / len(ids):.1%} | {len(t['refused'])} | "
            f"{seconds / len(ids) * 1000:.0f} |",
            flush=True,
        )
        if t["wrong"] or t["refused"]:
            misses.append(
                f"{filt} {size} {fmt} {bg}: wrong {t['wrong']}, refused {t['refused']}"
                + (f" (ties the file cannot tell apart: {t['tied']})" if t["tied"] else "")
                + (f" (wrong yet verified: {t['proven']})" if t["proven"] else "")
            )
    if misses:
        print("\npunks not read right (ids):\n" + "\n".join(f"- {m}" for m in misses))


if __name__ == "__main__":
    main()
