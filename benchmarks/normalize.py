"""How exactly `normalize` recovers the punks from rendered variants of all 10,000 crops.

    python benchmarks/normalize.py [--variants png8,jpeg75] [--every 1]

Each crop is upscaled x8 (nearest) onto the official blue #638596 and saved as PNG, or as JPEG
at quality 75 (Pillow, 4:2:0), then normalised back; prints exact recoveries and ms per image.
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

from punktraits import data as D
from punktraits.normalize import collection_palette, normalize

BLUE = (0x63, 0x85, 0x96)


def variant(punk: np.ndarray, kind: str) -> bytes:
    im = Image.fromarray(punk, "RGBA").resize((192, 192), Image.NEAREST)
    canvas = Image.new("RGBA", im.size, BLUE + (255,))
    canvas.alpha_composite(im)
    buf = io.BytesIO()
    if kind == "jpeg75":
        canvas.convert("RGB").save(buf, format="JPEG", quality=75)
    else:
        canvas.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--variants", default="png8,jpeg75")
    ap.add_argument("--every", type=int, default=1, help="use every k-th punk")
    args = ap.parse_args()
    punks = D.load(args.data_dir)
    palette, counts = collection_palette(punks.images)
    ids = range(0, len(punks), args.every)
    for kind in args.variants.split(","):
        exact, failed, t = 0, [], time.perf_counter()
        for i in tqdm(ids, desc=kind, unit="img"):
            out, _ = normalize(variant(punks.images[i], kind), palette, counts)
            if (out == punks.images[i]).all():
                exact += 1
            else:
                failed.append(i)
        ms = (time.perf_counter() - t) / len(ids) * 1000
        print(
            f"{kind}: exact {exact:,} / {len(ids):,} = {exact / len(ids):.4%}, {ms:.1f} ms/image "
            f"(render + encode + normalise); not exact: {failed[:20]}"
        )


if __name__ == "__main__":
    main()
