"""Not a punk: images that are not CryptoPunks, and how many of them `punktraits predict` refuses.

    PUNKTRAITS_DATA=../shared/data python benchmarks/notpunks.py [--out DIR] [--n-real 10000]
    python benchmarks/notpunks.py --out DIR --report-only    # the report of that run, again

`make_set` draws 396 images of 24 kinds that are not CryptoPunks: solid colours, gradients, noise,
patterns, text, icons, smileys, photo-like pictures (plasma, blurred blobs, landscapes), QR-like
codes, doodles, a fake screenshot, other pixel art (symmetric sprites, made-up punk-style
characters in colours the collection never uses, the figure of docs/screenshots.py) and real punks
edited or blended until they are no longer punks. Every edit is heavy enough that a person would
say "not a CryptoPunk": two punks blended 50/50, an 8x8 block of the face repainted, colours
hue-rotated, inverted or channel-swapped, turned 90/180/270 degrees or upside down (never mirrored
left-right: a mirrored punk is still read as a punk), all 576 pixels shuffled, rows shifted
sideways 3-5 px (the upper and lower face sliding apart, or every other row torn), 30% of the
pixels replaced by noise, four punks shrunk into one 2x2 mosaic. Files are PNG, JPEG and WebP,
24 to 1024 px, square and a few not square (those the normaliser refuses before any drawing).

MILD edits (1-3 pixels changed) are not in that set: they are still punks, just not exact ones, and
should be answered with `verified: false` rather than refused. `make_mild` writes them apart.

`make_real` writes real punks as x1 PNG, x8 PNG on the site blue and x8 JPEG (quality 85) on the
blue: none of them may be refused. `main` makes all three sets, runs `punktraits predict DIR
--format jsonl` on each in a child process (given the data folder: the drawing check learns its
sprites from it), keeps the answers in DIR/answers-*.jsonl, and prints per kind the refusals (by
the drawing check, "not a CryptoPunk: ...", or earlier by the normaliser), the refused real punks
per render with their ids, and seconds per image, as markdown ready for docs/RESULTS.md.

Everything is seeded: the same seed gives the same bytes. The artwork is not openly licensed, so
the images are written at run time only, to --out (never into the repository).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from punktraits import data as D

BLUE = (0x63, 0x85, 0x96)  # the background of the official site and marketplace renders
REFUSED_BY_DRAWING = "not a CryptoPunk"  # how the drawing check's refusals begin
SQUARE = (24, 32, 48, 64, 96, 128, 192, 240, 256, 336, 400, 512, 768, 1024)
NOT_SQUARE = ((320, 240), (640, 480), (1024, 576), (200, 300), (512, 256), (96, 160))
WORDS = ("hello", "world", "not a punk", "lorem ipsum", "dolor sit", "pixel", "error 404", "OK",
         "Cancel", "2026", "README", "cat.jpg", "#638596", "punk?", "sale", "mint", "abc")  # fmt: skip

Rng = np.random.Generator


class Ctx:
    """What the generators may need: the punks and the collection's colours."""

    def __init__(self, punks: D.Punks):
        self.images = punks.images  # (N, 24, 24, 4) uint8
        flat = punks.images.reshape(-1, 4)
        keys = np.unique(flat.view(np.uint32).ravel())
        self.palette = keys.view(np.uint8).reshape(-1, 4)  # (P, 4) RGBA, transparent included
        self.opaque_rgb = self.palette[self.palette[:, 3] == 255, :3].astype(int)
        self.real = {im.tobytes() for im in punks.images}

    def off_palette(self, rng: Rng, dark: bool = False) -> tuple[int, int, int]:
        """A colour at least 40 (max over channels) from every colour of the collection."""
        while True:
            c = rng.integers(0, 90 if dark else 256, 3)
            if np.abs(self.opaque_rgb - c).max(1).min() >= 40:
                return tuple(int(v) for v in c)

    def punk(self, rng: Rng) -> tuple[int, np.ndarray]:
        i = int(rng.integers(len(self.images)))
        return i, self.images[i].copy()


def colour(rng: Rng, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


# -- encoding ----------------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str, rng: Rng) -> tuple[bytes, str]:
    """The file's bytes and how it was encoded. JPEG has no alpha: RGBA goes onto white first."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        if im.mode == "RGBA":
            im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im)
        q = int(rng.choice([75, 85, 90, 95]))
        im.convert("RGB").save(buf, format="JPEG", quality=q)
        return buf.getvalue(), f"JPEG q{q}"
    if fmt == "webp":
        if rng.random() < 0.5:
            im.save(buf, format="WEBP", lossless=True, method=4)
            return buf.getvalue(), "WebP lossless"
        im.save(buf, format="WEBP", quality=80, method=4)
        return buf.getvalue(), "WebP q80"
    im.save(buf, format="PNG")
    return buf.getvalue(), "PNG"


# Pixel art is rendered the ways punks are: (format, side or None for x1 (x3 under 24 px),
# background or None for transparent).
PIXEL_RENDERS = (
    ("png", None, None),
    ("png", 8, BLUE),
    ("png", 10, None),
    ("jpeg", 8, BLUE),
    ("webp", 8, BLUE),
    ("png", 336, BLUE),
    ("jpeg", 1024, BLUE),
    ("webp", 12, None),
)


def render_pixels(art: np.ndarray, which: int, rng: Rng) -> tuple[Image.Image, str, str]:
    """Upscale (n, n, 4) pixel art with nearest neighbour as the `which`-th of PIXEL_RENDERS."""
    fmt, side, bg = PIXEL_RENDERS[which % len(PIXEL_RENDERS)]
    n = art.shape[0]
    if side is None:
        side = n * math.ceil(24 / n)
    elif side < 24:  # a scale factor
        side = n * side
    im = Image.fromarray(art, "RGBA").resize((side, side), Image.NEAREST)
    if bg is not None or fmt == "jpeg":
        im = Image.alpha_composite(Image.new("RGBA", im.size, (bg or BLUE) + (255,)), im)
        im = im.convert("RGB")
    where = "on #638596" if bg or fmt == "jpeg" else "transparent"
    return im, fmt, f"{n}x{n} pixel art -> {side}x{side} nearest, {where}"


# -- pictures: f(rng, w, h, ctx) -> (image, how) -------------------------------------------------


def solid(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    pick = int(rng.integers(6))
    if pick == 0:
        return Image.new("RGB", (w, h), BLUE), "the site blue #638596 alone"
    if pick == 1:
        return Image.new("RGBA", (w, h), (0, 0, 0, 0)), "fully transparent"
    c = colour(rng) if pick > 2 else ((0, 0, 0) if rng.random() < 0.5 else (255, 255, 255))
    return Image.new("RGB", (w, h), c), f"solid {c}"


def gradient(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    yy, xx = np.mgrid[:h, :w] / max(w, h)
    stops = np.array([colour(rng) for _ in range(int(rng.integers(2, 4)))], float)
    if rng.random() < 0.6:
        a = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(a) + yy * np.sin(a)
        how = f"linear gradient at {np.degrees(a):.0f} deg, {len(stops)} colours"
    else:
        cx, cy = rng.uniform(0.2, 0.8, 2)
        t = np.hypot(xx - cx, yy - cy)
        how = f"radial gradient, {len(stops)} colours"
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9) * (len(stops) - 1)
    k = np.minimum(t.astype(int), len(stops) - 2)
    f = (t - k)[..., None]
    rgb = stops[k] * (1 - f) + stops[k + 1] * f
    return Image.fromarray(np.rint(rgb).astype(np.uint8), "RGB"), how


def noise(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    pick = int(rng.integers(5))
    if pick == 0:
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)), "uniform RGB noise"
    if pick == 1:
        sd = rng.uniform(15, 60)
        g = np.clip(rng.normal(128, sd, (h, w, 1)), 0, 255).astype(np.uint8).repeat(3, 2)
        return Image.fromarray(g), f"gaussian grey noise, sd {sd:.0f}"
    if pick == 2:
        p = rng.uniform(0.02, 0.2)
        base = np.full((h, w, 3), colour(rng, 60, 200), np.uint8)
        u = rng.random((h, w))
        base[u < p / 2], base[(u >= p / 2) & (u < p)] = 0, 255
        return Image.fromarray(base), f"salt-and-pepper noise, {p:.0%}"
    if pick == 3:
        cells = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        return Image.fromarray(cells).resize((w, h), Image.NEAREST), "24x24 random colour blocks"
    # The collection's own colours at random: the statistics of a punk without its shapes.
    cells = ctx.palette[rng.integers(len(ctx.palette), size=(24, 24))]
    im = Image.fromarray(cells, "RGBA").resize((w, h), Image.NEAREST)
    im = Image.alpha_composite(Image.new("RGBA", (w, h), BLUE + (255,)), im)
    return im.convert("RGB"), "24x24 random colours of the punk palette, on #638596"


def pattern(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    a, b = np.array(colour(rng), np.uint8), np.array(colour(rng), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    pick = int(rng.integers(4))
    if pick == 0:
        cell = max(1, min(w, h) // 24) if rng.random() < 0.4 else int(rng.integers(2, 40))
        on = ((yy // cell + xx // cell) % 2).astype(bool)
        how = f"checkerboard, {cell} px cells"
    elif pick == 1:
        width = int(rng.integers(2, max(3, min(w, h) // 4)))
        on = ((yy if rng.random() < 0.5 else xx) // width % 2).astype(bool)
        how = f"stripes, {width} px"
    elif pick == 2:
        width = int(rng.integers(3, max(4, min(w, h) // 4)))
        on = ((xx + yy) // width % 2).astype(bool)
        how = f"diagonal stripes, {width} px"
    else:
        step = int(rng.integers(6, max(7, min(w, h) // 3)))
        on = (xx % step == 0) | (yy % step == 0)
        how = f"grid lines every {step} px"
    return Image.fromarray(np.where(on[..., None], a, b)), how


def text(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    bg, fg = colour(rng, 170, 256), colour(rng, 0, 90)
    if rng.random() < 0.3:
        bg, fg = fg, bg
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    size = max(8, int(min(w, h) / rng.uniform(4, 10)))
    font = ImageFont.load_default(size=size)
    lines = [str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 5)))]
    y = float(rng.uniform(0, 0.2)) * h
    for line in lines:
        d.text((float(rng.uniform(0, 0.2)) * w, y), line, fill=fg, font=font)
        y += size * 1.3
    return im, f"text in PIL's default font, {size} px: {' / '.join(lines)}"


def _star(cx: float, cy: float, r: float, points: int = 5) -> list[tuple[float, float]]:
    out = []
    for k in range(2 * points):
        rr = r if k % 2 == 0 else r * 0.45
        a = -np.pi / 2 + k * np.pi / points
        out.append((cx + rr * np.cos(a), cy + rr * np.sin(a)))
    return out


def icon(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    """Drawn at 4x and reduced (anti-aliased), or flat when small."""
    ss = 4 if min(w, h) >= 64 else 1
    W, H = w * ss, h * ss
    s = min(W, H)
    cx, cy = W / 2, H / 2
    transparent = rng.random() < 0.3
    bg = (0, 0, 0, 0) if transparent else colour(rng, 200, 256) + (255,)
    fg = colour(rng, 0, 200) + (255,)
    im = Image.new("RGBA", (W, H), bg)
    d = ImageDraw.Draw(im)
    m = s * 0.15
    shape = str(rng.choice(["circle", "star", "arrow", "folder", "document", "gear", "heart",
                            "check"]))  # fmt: skip
    if shape == "circle":
        d.ellipse((cx - s / 2 + m, cy - s / 2 + m, cx + s / 2 - m, cy + s / 2 - m), fill=fg)
    elif shape == "star":
        d.polygon(_star(cx, cy, s / 2 - m), fill=fg)
    elif shape == "arrow":
        u = s / 10
        pts = [(-4, -1), (1, -1), (1, -3), (4, 0), (1, 3), (1, 1), (-4, 1)]
        a = float(rng.choice([0, np.pi / 2, np.pi, -np.pi / 2]))
        d.polygon([(cx + u * (x * np.cos(a) - y * np.sin(a)), cy + u * (x * np.sin(a) + y * np.cos(a)))
                   for x, y in pts], fill=fg)  # fmt: skip
    elif shape == "folder":
        x0, y0, x1, y1 = cx - s * 0.38, cy - s * 0.25, cx + s * 0.38, cy + s * 0.3
        d.rectangle((x0, y0 - s * 0.08, x0 + s * 0.3, y0 + 1), fill=fg)
        d.rounded_rectangle((x0, y0, x1, y1), radius=s * 0.04, fill=fg)
    elif shape == "document":
        x0, y0, x1, y1 = cx - s * 0.28, cy - s * 0.38, cx + s * 0.28, cy + s * 0.38
        f = s * 0.15
        d.polygon([(x0, y0), (x1 - f, y0), (x1, y0 + f), (x1, y1), (x0, y1)], fill=(255, 255, 255, 255),
                  outline=fg, width=max(1, int(s * 0.03)))  # fmt: skip
        for k in range(4):
            y = y0 + s * (0.25 + 0.12 * k)
            d.line((x0 + s * 0.08, y, x1 - s * 0.08, y), fill=fg, width=max(1, int(s * 0.03)))
    elif shape == "gear":
        r = s * 0.28
        for k in range(8):
            a = k * np.pi / 4
            c, sn = np.cos(a), np.sin(a)
            tooth = [(-0.12, r * 0.8), (0.12, r * 0.8), (0.12, r * 1.35), (-0.12, r * 1.35)]
            d.polygon(
                [(cx + x * s * c - y * sn, cy + x * s * sn + y * c) for x, y in tooth], fill=fg
            )
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
        d.ellipse((cx - r * 0.4, cy - r * 0.4, cx + r * 0.4, cy + r * 0.4), fill=bg)
    elif shape == "heart":
        r = s * 0.18
        d.ellipse((cx - 2 * r, cy - 1.6 * r, cx, cy + 0.4 * r), fill=fg)
        d.ellipse((cx, cy - 1.6 * r, cx + 2 * r, cy + 0.4 * r), fill=fg)
        d.polygon(
            [(cx - 1.93 * r, cy - 0.2 * r), (cx + 1.93 * r, cy - 0.2 * r), (cx, cy + 2.2 * r)],
            fill=fg,
        )
    else:
        d.line([(cx - s * 0.3, cy), (cx - s * 0.08, cy + s * 0.22), (cx + s * 0.32, cy - s * 0.25)],
               fill=fg, width=max(2, int(s * 0.1)), joint="curve")  # fmt: skip
    if ss > 1:
        im = im.resize((w, h), Image.LANCZOS)
    return im, f"{shape} icon, {'transparent' if transparent else 'solid'} background" + (
        ", anti-aliased" if ss > 1 else ", flat"
    )


def smiley(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    ss = 4 if min(w, h) >= 64 else 1
    W, H = w * ss, h * ss
    s = min(W, H)
    cx, cy, r = W / 2, H / 2, s * 0.42
    im = Image.new("RGB", (W, H), colour(rng, 120, 256))
    d = ImageDraw.Draw(im)
    lw = max(1, int(s * 0.025))
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 204, 50), outline=(60, 40, 0), width=lw)
    face = str(rng.choice(["smile", "frown", "wink", "shades", "surprised"]))
    ey, ex, er = cy - r * 0.25, r * 0.35, r * 0.12
    if face == "shades":
        d.rectangle((cx - r * 0.65, ey - er, cx + r * 0.65, ey + er * 1.2), fill=(20, 20, 20))
    else:
        d.ellipse((cx - ex - er, ey - er * 1.4, cx - ex + er, ey + er * 1.4), fill=(60, 40, 0))
        if face == "wink":
            d.line((cx + ex - er, ey, cx + ex + er, ey), fill=(60, 40, 0), width=lw * 2)
        else:
            d.ellipse((cx + ex - er, ey - er * 1.4, cx + ex + er, ey + er * 1.4), fill=(60, 40, 0))
    box = (cx - r * 0.55, cy - r * 0.3, cx + r * 0.55, cy + r * 0.6)
    if face == "frown":
        d.arc(
            (box[0], cy + r * 0.25, box[2], cy + r * 0.95), 200, 340, fill=(60, 40, 0), width=lw * 2
        )
    elif face == "surprised":
        d.ellipse((cx - r * 0.15, cy + r * 0.25, cx + r * 0.15, cy + r * 0.6), fill=(60, 40, 0))
    else:
        d.arc(box, 20, 160, fill=(60, 40, 0), width=lw * 2)
    if ss > 1:
        im = im.resize((w, h), Image.LANCZOS)
    return im, f"emoji-like {face} face"


def _value_noise(rng: Rng, w: int, h: int, octaves: int) -> np.ndarray:
    """Smooth fractal noise in [0, 1]: random grids of 2, 4, 8, ... cells, bicubic-upscaled."""
    total = np.zeros((h, w), np.float32)
    for k in range(octaves):
        n = 2 ** (k + 1) + 1
        grid = Image.fromarray(rng.random((n, n)).astype(np.float32), "F")
        total += np.asarray(grid.resize((w, h), Image.BICUBIC)) * 0.55**k
    return (total - total.min()) / max(float(total.max() - total.min()), 1e-9)


def plasma(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    octaves = int(rng.integers(3, 7))
    rgb = np.stack([_value_noise(rng, w, h, octaves) for _ in range(3)], -1)
    if rng.random() < 0.5:  # one channel through a two-colour map: more like a photo of clouds
        a, b = np.array(colour(rng), float), np.array(colour(rng), float)
        rgb = a + (b - a) * rgb[..., :1]
        return Image.fromarray(
            np.rint(rgb).astype(np.uint8)
        ), f"fractal plasma, {octaves} octaves, 2 colours"
    return Image.fromarray(
        np.rint(rgb * 255).astype(np.uint8)
    ), f"fractal plasma, {octaves} octaves, RGB"


def blobs(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    im = Image.new("RGB", (w, h), colour(rng))
    d = ImageDraw.Draw(im)
    n = int(rng.integers(5, 16))
    for _ in range(n):
        x, y = rng.uniform(-0.1, 1.1, 2) * (w, h)
        rx, ry = rng.uniform(0.05, 0.35, 2) * min(w, h)
        d.ellipse((x - rx, y - ry, x + rx, y + ry), fill=colour(rng))
    radius = min(w, h) * rng.uniform(0.02, 0.08)
    return im.filter(ImageFilter.GaussianBlur(radius)), f"{n} blurred blobs, radius {radius:.1f}"


def landscape(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    yy = np.linspace(0, 1, h)[:, None, None]
    top, horizon = np.array([30, 70, 160]) + rng.integers(-20, 20, 3), np.array([200, 220, 240])
    sky = top + (horizon - top) * yy
    im = Image.fromarray(np.rint(np.broadcast_to(sky, (h, w, 3))).astype(np.uint8))
    d = ImageDraw.Draw(im)
    sx, sy, sr = (
        rng.uniform(0.15, 0.85) * w,
        rng.uniform(0.1, 0.4) * h,
        rng.uniform(0.05, 0.1) * min(w, h),
    )
    d.ellipse((sx - sr, sy - sr, sx + sr, sy + sr), fill=(255, 220, 90))
    layers = int(rng.integers(2, 4))
    xs = np.linspace(0, w, 64)
    for k in range(layers):
        base = h * (0.45 + 0.15 * k)
        f, ph = rng.uniform(1, 4), rng.uniform(0, 2 * np.pi)
        ys = (
            base
            - h * 0.08 * np.sin(xs / w * f * np.pi + ph)
            - h * 0.02 * np.sin(xs / w * 7 * f + ph)
        )
        green = (int(40 + 30 * k), int(120 - 25 * k + rng.integers(-20, 20)), int(40 + 10 * k))
        d.polygon([(0, h)] + list(zip(xs.tolist(), ys.tolist())) + [(w, h)], fill=green)
    a = np.asarray(im).astype(float) + rng.normal(0, 4, (h, w, 3))
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
    return im, f"landscape: sky gradient, sun, {layers} hills, film grain"


def qr(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    m = int(rng.choice([20, 21, 25, 29]))
    q = 2  # quiet zone; 20 + 2 + 2 modules is a 24x24 grid like a punk's
    mod = rng.random((m, m)) < 0.5
    for y0, x0 in ((0, 0), (0, m - 7), (m - 7, 0)):  # the three finder squares
        f = np.zeros((7, 7), bool)
        f[[0, 6], :], f[:, [0, 6]], f[2:5, 2:5] = True, True, True
        mod[y0 : y0 + 7, x0 : x0 + 7] = f
    full = np.zeros((m + 2 * q, m + 2 * q), bool)
    full[q : q + m, q : q + m] = mod
    img = np.where(full[..., None], np.uint8(0), np.uint8(255)).repeat(3, 2)
    return Image.fromarray(img).resize(
        (w, h), Image.NEAREST
    ), f"QR-like code, {m} modules + quiet zone"


def drawing(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    im = Image.new("RGB", (w, h), (250, 248, 240))
    d = ImageDraw.Draw(im)
    s = min(w, h)
    pen = [(20, 20, 20), (20, 40, 160), (180, 20, 20)][int(rng.integers(3))]
    lw = max(1, int(s * rng.uniform(0.005, 0.02)))
    pick = int(rng.integers(3))
    if pick == 0:  # stick figure
        cx, top = w / 2, h * 0.15
        r = s * 0.1
        d.ellipse((cx - r, top, cx + r, top + 2 * r), outline=pen, width=lw)
        neck, hip = top + 2 * r, top + 2 * r + s * 0.3
        d.line((cx, neck, cx, hip), fill=pen, width=lw)
        d.line((cx - s * 0.2, neck + s * 0.1, cx + s * 0.2, neck + s * 0.05), fill=pen, width=lw)
        d.line((cx, hip, cx - s * 0.15, hip + s * 0.25), fill=pen, width=lw)
        d.line((cx, hip, cx + s * 0.15, hip + s * 0.25), fill=pen, width=lw)
        return im, "stick figure drawn with lines"
    if pick == 1:  # a child's house
        x0, y0, x1, y1 = w * 0.25, h * 0.45, w * 0.75, h * 0.85
        d.rectangle((x0, y0, x1, y1), outline=pen, width=lw)
        d.polygon(
            [(x0 - w * 0.05, y0), (w / 2, h * 0.15), (x1 + w * 0.05, y0)], outline=pen, width=lw
        )
        d.rectangle((w * 0.45, h * 0.65, w * 0.55, y1), outline=pen, width=lw)
        return im, "house drawn with lines"
    n = int(rng.integers(3, 12))
    for _ in range(n):  # random-walk scribbles
        p = rng.uniform(0.1, 0.9, 2) * (w, h)
        pts = [tuple(p)]
        v = rng.normal(0, 1, 2)
        for _ in range(int(rng.integers(5, 40))):
            v = 0.8 * v + rng.normal(0, 0.6, 2)
            p = np.clip(p + v * s * 0.02, 0, (w - 1, h - 1))
            pts.append(tuple(p))
        d.line(pts, fill=pen, width=lw, joint="curve")
    return im, f"{n} scribbles"


def screenshot(rng: Rng, w: int, h: int, ctx: Ctx) -> tuple[Image.Image, str]:
    im = Image.new("RGB", (w, h), (236, 236, 236))
    d = ImageDraw.Draw(im)
    bar = max(6, h // 12)
    d.rectangle((0, 0, w, bar), fill=colour(rng, 150, 230))
    for k, c in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
        x = bar * (0.6 + 0.9 * k)
        d.ellipse((x - bar * 0.3, bar * 0.2, x + bar * 0.3, bar * 0.8), fill=c)
    side = int(w * rng.uniform(0.15, 0.3))
    d.rectangle((0, bar, side, h), fill=(210, 214, 220))
    font = ImageFont.load_default(size=max(8, bar // 2))
    y = bar * 1.5
    while y < h - bar:
        d.text((side + bar * 0.5, y), str(rng.choice(WORDS)), fill=(40, 40, 40), font=font)
        y += bar * 0.9
    bx = w * rng.uniform(0.5, 0.7)
    d.rounded_rectangle(
        (bx, h - bar * 1.6, bx + w * 0.2, h - bar * 0.4), radius=bar // 4, fill=(40, 110, 230)
    )
    return im, "window screenshot: title bar, sidebar, text lines, a button"


# -- pixel art: f(rng, ctx) -> ((n, n, 4) uint8, how) -----------------------------------------


def sprite(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    """A random left-right symmetric sprite (space-invaders style) in 1-3 random colours."""
    n = int(rng.choice([8, 16, 24, 32]))
    k = int(rng.integers(1, 4))
    cols = np.array([colour(rng) + (255,) for _ in range(k)], np.uint8)
    density = rng.uniform(0.35, 0.6)
    half = np.where(rng.random((n, n // 2)) < density, rng.integers(1, k + 1, (n, n // 2)), 0)
    idx = np.hstack([half, half[:, ::-1]])
    art = np.zeros((n, n, 4), np.uint8)
    art[idx > 0] = cols[idx[idx > 0] - 1]
    how = f"symmetric {n}x{n} sprite, {k} colours, {density:.0%} filled"
    if n < 24 and rng.random() < 0.5:
        canvas = np.zeros((24, 24, 4), np.uint8)
        o = (24 - n) // 2
        canvas[o : o + n, o : o + n] = art
        art, how = canvas, how + ", centred on 24x24"
    if rng.random() < 0.4:
        bg = np.array(colour(rng) + (255,), np.uint8)
        art = np.where(art[..., 3:] > 0, art, bg)
        how += f", background {tuple(bg[:3].tolist())}"
    return art, how


def character(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    """A made-up 24x24 figure in the punks' style (head, eyes, mouth, hair or hat, glasses) in
    colours at least 40 from every colour of the collection."""
    art = np.zeros((24, 24, 4), np.uint8)
    skin, line = ctx.off_palette(rng) + (255,), ctx.off_palette(rng, dark=True) + (255,)
    yy, xx = np.mgrid[:24, :24]
    top, left, right = int(rng.integers(4, 8)), int(rng.integers(5, 8)), int(rng.integers(16, 19))
    if rng.random() < 0.5:  # round head
        cy, cx, ry, rx = (top + 21) / 2, (left + right) / 2, (21 - top) / 2, (right - left) / 2
        head = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        inner = ((yy - cy) / (ry - 1)) ** 2 + ((xx - cx) / (rx - 1)) ** 2 <= 1
        shape = "round"
    else:  # a block head with a neck, like a punk's
        head = (yy >= top) & (yy <= 19) & (xx >= left) & (xx <= right)
        head |= (yy > 19) & (xx >= left + 2) & (xx <= left + 7)
        inner = np.zeros_like(head)
        inner[1:-1, 1:-1] = head[:-2, 1:-1] & head[2:, 1:-1] & head[1:-1, :-2] & head[1:-1, 2:]
        shape = "block"
    art[head], art[head & ~inner] = skin, line
    ey = int(rng.integers(11, 14))
    art[ey, left + 3], art[ey, right - 3] = line, line
    art[ey + 5, left + 4 : right - 3] = line
    parts = [f"{shape} head"]
    hat = int(rng.integers(3))
    if hat == 0:
        c = ctx.off_palette(rng) + (255,)
        art[max(top - 3, 0) : top + 1, left - 1 : right + 2] = c
        art[top + 1, left - 1 : right + 4] = c
        parts.append("cap")
    elif hat == 1:
        c = ctx.off_palette(rng) + (255,)
        hair = head & (yy <= top + 2)
        hair[top - 2 : top, left + 2 : right - 1] = True
        art[hair] = c
        parts.append("hair")
    if rng.random() < 0.5:
        c = ctx.off_palette(rng) + (255,)
        art[ey - 1 : ey + 1, left + 1 : left + 5], art[ey - 1 : ey + 1, right - 4 : right] = c, c
        art[ey - 1, left + 5 : right - 4] = line
        parts.append("glasses")
    return art, "made-up punk-style figure, colours off the punk palette: " + ", ".join(parts)


def figure_pixels() -> np.ndarray:
    """A made-up 24x24 RGBA figure (a round head with a cap and glasses; not a punk): the one
    docs/screenshots.py shows in docs/serve.png."""
    im = np.zeros((24, 24, 4), np.uint8)
    skin, dark, cap, lens = (219, 177, 128, 255), (0, 0, 0, 255), (40, 90, 200, 255), (80, 200, 220, 255)  # fmt: skip
    yy, xx = np.mgrid[:24, :24]
    head = ((yy - 13) / 8.5) ** 2 + ((xx - 12) / 6.5) ** 2 <= 1
    edge = head & ~(((yy - 13) / 7.5) ** 2 + ((xx - 12) / 5.5) ** 2 <= 1)
    im[head], im[edge] = skin, dark
    im[4:8, 5:19], im[7, 3:19] = cap, cap
    im[11:13, 7:11], im[11:13, 13:17], im[11, 11:13] = lens, lens, dark
    im[17, 10:15] = dark
    return im


def docs_figure(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    """The made-up figure of docs/screenshots.py, pixel for pixel."""
    return figure_pixels(), "the figure of docs/screenshots.py (docs/serve.png)"


def _premultiplied_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    fa, fb = a[..., 3:] / 255.0, b[..., 3:] / 255.0
    alpha = (fa + fb) / 2
    rgb = (a[..., :3] * fa + b[..., :3] * fb) / 2 / np.maximum(alpha, 1e-9)
    return np.rint(np.concatenate([rgb, alpha * 255], -1)).astype(np.uint8)


def punk_blend(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    i, a = ctx.punk(rng)
    j, b = ctx.punk(rng)
    return _premultiplied_mean(a, b), f"punks {i} and {j} blended 50/50"


def punk_block(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    i, p = ctx.punk(rng)
    y, x = (int(v) for v in rng.integers(6, 13, 2))  # over the face
    c = ctx.off_palette(rng)
    p[y : y + 8, x - 2 : x + 6] = c + (255,)
    return p, f"punk {i}, 8x8 block at row {y}, column {x - 2} painted {c}"


def punk_recolour(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    i, p = ctx.punk(rng)
    on = p[..., 3] > 0
    pick = int(rng.integers(3))
    if pick == 0:
        deg = float(rng.uniform(90, 270))
        hsv = np.asarray(Image.fromarray(p[..., :3]).convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(int) + round(deg / 360 * 256)) % 256
        p[..., :3] = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))
        how = f"hue rotated {deg:.0f} deg"
    elif pick == 1:
        p[..., :3] = 255 - p[..., :3]
        how = "colours inverted"
    else:
        order = [(1, 2, 0), (2, 0, 1)][int(rng.integers(2))]
        p[..., :3] = p[..., list(order)]
        how = f"channels {'RGB'} -> {''.join('RGB'[k] for k in order)}"
    p[~on] = 0  # the background stays transparent
    return p, f"punk {i}, {how}"


def punk_rotated(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    i, p = ctx.punk(rng)
    k = int(rng.integers(4))
    if k == 3:
        return np.ascontiguousarray(p[::-1]), f"punk {i} upside down (flipped top-bottom)"
    return np.ascontiguousarray(np.rot90(p, k + 1)), f"punk {i} turned {90 * (k + 1)} deg"


def punk_shuffled(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    i, p = ctx.punk(rng)
    flat = p.reshape(-1, 4)
    return flat[rng.permutation(len(flat))].reshape(24, 24, 4), f"punk {i}, all 576 pixels shuffled"


def punk_scrolled(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    """Rows shifted sideways (wrapping) so that the features no longer line up: a whole scroll
    of the punk would still be a punk, only shifted."""
    i, p = ctx.punk(rng)
    k = int(rng.integers(3, 6))
    out = p.copy()
    if rng.random() < 0.5:
        cut = int(rng.integers(9, 16))
        out[:cut], out[cut:] = np.roll(p[:cut], k, axis=1), np.roll(p[cut:], -k, axis=1)
        return out, f"punk {i}, rows 0-{cut - 1} shifted {k} px right, the rest {k} px left"
    out[1::2] = np.roll(p[1::2], k, axis=1)
    return out, f"punk {i}, every other row shifted {k} px right (torn)"


def punk_noise(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    i, p = ctx.punk(rng)
    flat = p.reshape(-1, 4)
    where = rng.choice(len(flat), size=round(0.3 * len(flat)), replace=False)
    flat[where, :3] = rng.integers(0, 256, (len(where), 3))
    flat[where, 3] = 255
    return p, f"punk {i}, 30% of the pixels ({len(where)}) random colours"


def punk_mosaic(rng: Rng, ctx: Ctx) -> tuple[np.ndarray, str]:
    ids, tiles = zip(*(ctx.punk(rng) for _ in range(4)))
    art = np.zeros((24, 24, 4), np.uint8)
    for k, t in enumerate(tiles):
        y, x = 12 * (k // 2), 12 * (k % 2)
        art[y : y + 12, x : x + 12] = t[1::2, 1::2]
    return art, f"2x2 mosaic of punks {', '.join(map(str, ids))}, each shrunk to 12x12"


# kind -> (generator, count, is pixel art). Counts sum to 396.
KINDS: dict[str, tuple[Callable, int, bool]] = {
    "solid": (solid, 16, False),
    "gradient": (gradient, 16, False),
    "noise": (noise, 24, False),
    "pattern": (pattern, 20, False),
    "text": (text, 16, False),
    "icon": (icon, 24, False),
    "smiley": (smiley, 16, False),
    "plasma": (plasma, 14, False),
    "blobs": (blobs, 14, False),
    "landscape": (landscape, 14, False),
    "qr": (qr, 16, False),
    "drawing": (drawing, 16, False),
    "screenshot": (screenshot, 12, False),
    "sprite": (sprite, 24, True),
    "character": (character, 20, True),
    "docs_figure": (docs_figure, 8, True),
    "punk_blend": (punk_blend, 16, True),
    "punk_block": (punk_block, 16, True),
    "punk_recolour": (punk_recolour, 18, True),
    "punk_rotated": (punk_rotated, 16, True),
    "punk_shuffled": (punk_shuffled, 12, True),
    "punk_scrolled": (punk_scrolled, 16, True),
    "punk_noise": (punk_noise, 16, True),
    "punk_mosaic": (punk_mosaic, 16, True),
}

EXT = {"png": "png", "jpeg": "jpg", "webp": "webp"}


def _write(out: Path, name: str, data: bytes, row: dict, rows: list[dict]) -> None:
    (out / name).write_bytes(data)
    rows.append({"file": name, **row})


def _write_manifest(out: Path, rows: list[dict]) -> None:
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    (out / "manifest.jsonl").write_text(text, encoding="utf-8")


def make_set(out: Path, punks: D.Punks, seed: int = 0) -> list[dict]:
    """Write the not-a-punk images into `out` and their `manifest.jsonl` (file, kind, how, format,
    size); return the manifest's rows. The same seed gives the same bytes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(punks)
    rows: list[dict] = []
    for k, (kind, (make, count, pixel_art)) in enumerate(KINDS.items()):
        for i in range(count):
            rng = np.random.default_rng([seed, k, i])  # one stream per image: kinds are independent
            if pixel_art:
                art, how = make(rng, ctx)
                if art.shape == (24, 24, 4) and art.tobytes() in ctx.real:
                    raise AssertionError(f"{kind} {i} is a real punk: {how}")
                im, fmt, drawn = render_pixels(art, i, rng)
                how = f"{how}; {drawn}"
            else:
                if i % 8 == 5:
                    w, h = NOT_SQUARE[(i // 8) % len(NOT_SQUARE)]
                else:
                    w = h = int(rng.choice(SQUARE))
                fmt = ("png", "jpeg", "webp")[int(rng.integers(3))]
                im, how = make(rng, w, h, ctx)
            data, enc = encode(im, fmt, rng)
            name = f"{len(rows):03d}-{kind}-{i:02d}.{EXT[fmt]}"
            row = {"kind": kind, "how": how, "format": enc, "size": list(im.size)}
            _write(out, name, data, row, rows)
    _write_manifest(out, rows)
    return rows


# Mild edits: still punks, only not exact ones. Not in the set; `verified: false`, not refused.
MILD_EDITS = (
    "1 pixel of the face set to an off-palette colour",
    "2 pixels of the face set to an off-palette colour",
    "3 pixels of the face set to an off-palette colour",
    "1 background pixel next to the head painted with the skin colour",
    "1 outline pixel made transparent",
    "2 neighbouring pixels of different colours swapped",
)


def make_mild(out: Path, punks: D.Punks, seed: int = 0, per_edit: int = 3) -> list[dict]:
    """Write punks with 1-3 pixels changed (x8 PNG on the blue) and their manifest into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(punks)
    rows: list[dict] = []
    for e, edit in enumerate(MILD_EDITS):
        for r in range(per_edit):
            rng = np.random.default_rng([seed, 1000 + e, r])
            i, p = ctx.punk(rng)
            opaque = np.argwhere(p[..., 3] == 255)
            opaque = opaque[(opaque[:, 0] >= 8) & (opaque[:, 0] <= 18)]  # the face rows
            if e <= 2:
                for y, x in opaque[rng.choice(len(opaque), e + 1, replace=False)]:
                    p[y, x] = ctx.off_palette(rng) + (255,)
            elif e == 3:
                face = p[10:17][p[10:17, :, 3] == 255].reshape(-1, 4)
                keys, n = np.unique(face.view(np.uint32).ravel(), return_counts=True)
                skin = keys[n.argmax()].reshape(1).view(np.uint8)  # the commonest face colour
                ys = [y for y in range(9, 17) if p[y, 0, 3] == 0 and p[y, :, 3].any()]
                y = ys[int(rng.integers(len(ys)))]
                p[y, int(np.flatnonzero(p[y, :, 3])[0]) - 1] = skin
            elif e == 4:
                dark = np.argwhere((p[..., :3].sum(-1) == 0) & (p[..., 3] == 255))
                y, x = dark[rng.integers(len(dark))]
                p[y, x] = 0
            else:
                differ = np.argwhere((p[:, :-1] != p[:, 1:]).any(-1) & (p[:, :-1, 3] == 255))
                y, x = differ[rng.integers(len(differ))]
                p[y, x], p[y, x + 1] = p[y, x + 1].copy(), p[y, x].copy()
            im, _, drawn = render_pixels(p, 1, rng)
            data, enc = encode(im, "png", rng)
            name = f"mild-{e}-{r}-punk{i}.png"
            _write(out, name, data, {"kind": f"mild {e}", "how": f"punk {i}: {edit}; {drawn}",
                                     "format": enc, "size": list(im.size)}, rows)  # fmt: skip
    _write_manifest(out, rows)
    return rows


REAL_RENDERS = {"x1-png": "x1 PNG (the crop)", "x8-png": "x8 PNG on #638596",
                "x8-jpeg": "x8 JPEG q85 on #638596"}  # fmt: skip


def make_real(out: Path, punks: D.Punks, ids) -> list[dict]:
    """Write punks `ids` as x1 PNG, x8 PNG on the blue and x8 JPEG q85 on the blue into
    out/<render>/<id>.png|jpg, with a manifest; return its rows (file, render, id)."""
    out = Path(out)
    for r in REAL_RENDERS:
        (out / r).mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for i in ids:
        i = int(i)
        crop = Image.fromarray(punks.images[i], "RGBA")
        crop.save(out / "x1-png" / f"{i:04d}.png", format="PNG")
        big = Image.alpha_composite(
            Image.new("RGBA", (192, 192), BLUE + (255,)), crop.resize((192, 192), Image.NEAREST)
        ).convert("RGB")
        big.save(out / "x8-png" / f"{i:04d}.png", format="PNG")
        big.save(out / "x8-jpeg" / f"{i:04d}.jpg", format="JPEG", quality=85)
        rows += [{"file": f"x1-png/{i:04d}.png", "render": "x1-png", "id": i},
                 {"file": f"x8-png/{i:04d}.png", "render": "x8-png", "id": i},
                 {"file": f"x8-jpeg/{i:04d}.jpg", "render": "x8-jpeg", "id": i}]  # fmt: skip
    _write_manifest(out, rows)
    return rows


# -- measuring ---------------------------------------------------------------------------------


def predict_folder(
    folder: Path, model: str | None, data_dir: str | None, answers: Path, log: Path
) -> float:
    """Run `punktraits predict folder --format jsonl` in a child process, its output into
    `answers`; return its wall time in seconds (model loading included). The drawing rules of the
    check are learned from the data folder, so the child is given it as $PUNKTRAITS_DATA."""
    cmd = [sys.executable, "-m", "punktraits", "predict", str(folder), "--format", "jsonl"]
    if model:
        cmd += ["--model", model]
    env = dict(os.environ, **({D.ENV_DATA: str(data_dir)} if data_dir else {}))
    t = time.perf_counter()
    with open(answers, "wb") as f, open(log, "wb") as err:
        done = subprocess.run(cmd, stdout=f, stderr=err, env=env)
    wall = time.perf_counter() - t
    if done.returncode not in (0, 1):  # 1: some files refused, as expected
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{shlex.join(cmd)} failed with exit code {done.returncode}:\n{tail}")
    return wall


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def answered(folder: Path, rows: list[dict], answers: Path) -> list[dict]:
    """The answer to each manifest row, in its order."""
    by_path = {str(Path(a["file"]).resolve()): a for a in read_jsonl(answers)}
    return [by_path[str((folder / r["file"]).resolve())] for r in rows]


def reason(answer: dict) -> str | None:
    """None (answered), "drawing" (refused as not a CryptoPunk) or "normaliser" (refused before)."""
    if not answer.get("error"):
        return None
    return "drawing" if REFUSED_BY_DRAWING in answer["error"] else "normaliser"


# The normaliser's reasons, by a phrase of each; "gave up after" (its time limit) depends on the
# machine's load, so it is counted apart.
NORMALISER_REASONS = {"not square": "not square", "pixel grid": "no 24x24 grid",
                      "background colour": "no one background colour",
                      "all one colour": "one colour", "smaller than": "under 24 px",
                      "greyscale": "greyscale", "background is black": "black background",
                      "gave up after": "time limit", "not an image": "not an image"}  # fmt: skip


def normaliser_reason(error: str) -> str:
    return next((v for k, v in NORMALISER_REASONS.items() if k in error), "other")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def verified_cell(answers: list[dict]) -> str:
    """Of the answers (not refused): verified / drawn back but not verified / not checked."""
    ok = [a for a in answers if not a.get("error")]
    if not ok:
        return "–"
    c = Counter(a.get("verified") for a in ok)
    return f"{c[True]} / {c[False]} / {c[None]}"


def unchecked_notes(answers: list[dict]) -> list[str]:
    """Why answers were not drawn back (e.g. no data folder), once each."""
    notes = {(a.get("check") or {}).get("note") for a in answers if a.get("verified") is None}
    return sorted(n for n in notes if n)


def reencoded(error: str) -> float | None:
    """How far the nearest drawing, re-encoded with a small lossy file's encoder, came from
    it, as a drawing-check refusal says (mean levels a value), or None."""
    m = re.search(r"([0-9.]+) levels a value", error)
    return float(m.group(1)) if m else None


def report(out: Path) -> str:
    """Markdown for docs/RESULTS.md from what `main` left in `out`."""
    info = json.loads((out / "timings.json").read_text(encoding="utf-8"))
    walls = info["seconds"]
    rows = read_jsonl(out / "notpunks" / "manifest.jsonl")
    answers = answered(out / "notpunks", rows, out / "answers-notpunks.jsonl")
    lines = [
        f"### Not a punk ({info['date']}, {info['machine']}, punktraits {info['version']})",
        "",
        "```bash",
        info["command"],
        "```",
        "",
        "| kind | images | refused | as not a CryptoPunk | by the normaliser | of which its time limit "
        "| answered: verified / not / unchecked |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    by_kind: dict[str, list[dict]] = {}
    for r, a in zip(rows, answers):
        by_kind.setdefault(r["kind"], []).append(a)
    for kind, ans in [*by_kind.items(), (f"**all {len(by_kind)} kinds**", answers)]:
        c = Counter(reason(a) for a in ans)
        refused = c["drawing"] + c["normaliser"]
        late = sum(reason(a) == "normaliser" and "gave up after" in a["error"] for a in ans)
        lines.append(
            f"| {kind} | {len(ans)} | {refused} ({refused / len(ans):.1%}) | {c['drawing']} | "
            f"{c['normaliser']} | {late} | {verified_cell(ans)} |"
        )
    why = Counter(normaliser_reason(a["error"]) for a in answers if reason(a) == "normaliser")
    lines += ["", "Refused by the normaliser: "
              + (", ".join(f"{k} {v}" for k, v in why.most_common()) or "none") + "."]  # fmt: skip
    again = [reencoded(a["error"]) for a in answers if reason(a) == "drawing"]
    again = sorted(x for x in again if x is not None)
    if again:
        lines += ["", f"Small lossy not-punks weighed by re-encoding: {len(again)}; their nearest "
                  f"drawings re-encoded {again[0]:.1f} to {again[-1]:.1f} levels a value from "
                  f"them (a punk's: at most `verify.REENCODED`)."]  # fmt: skip
    for note in unchecked_notes(answers):
        lines += ["", f"**Answers not drawn back**: {note}"]
    if (out / "real" / "manifest.jsonl").exists():
        real = read_jsonl(out / "real" / "manifest.jsonl")
        lines += ["", "| real punks | images | refused | refused ids | answered: verified / not / unchecked | s / image |",
                  "|---|---:|---:|---|---:|---:|"]  # fmt: skip
        for render, label in REAL_RENDERS.items():
            these = [r for r in real if r["render"] == render]
            ans = answered(out / "real", these, out / f"answers-{render}.jsonl")
            bad = [r["id"] for r, a in zip(these, ans) if a.get("error")]
            ids = ", ".join(map(str, bad[:30])) + (" …" if len(bad) > 30 else "") if bad else "–"
            lines.append(
                f"| {label} | {len(ans):,} | {len(bad)} | {ids} | {verified_cell(ans)} | "
                f"{walls[render] / len(ans):.3f} |"
            )
    mild = read_jsonl(out / "mild" / "manifest.jsonl")
    ans = answered(out / "mild", mild, out / "answers-mild.jsonl")
    lines += ["", "| mild edit (1–3 px; not in the set: should be answered, unverified) | images | "
              "refused | answered: verified / not / unchecked |", "|---|---:|---:|---:|"]  # fmt: skip
    for e, edit in enumerate(MILD_EDITS):
        these = [a for r, a in zip(mild, ans) if r["kind"] == f"mild {e}"]
        refused = sum(bool(a.get("error")) for a in these)
        lines.append(f"| {edit} | {len(these)} | {refused} | {verified_cell(these)} |")
    lines += ["", f"Seconds per image (a child process each, loading the model included): "
              f"not-punks {walls['notpunks'] / len(rows):.3f}, mild edits "
              f"{walls['mild'] / len(mild):.3f}; generating the {len(rows)} not-punks took "
              f"{walls['make_set']:.1f} s."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument(
        "--out", type=Path, default=None, help="where to write (default: a new temp folder)"
    )
    ap.add_argument("--n-real", type=int, default=10_000,
                    help="real punks, evenly spread over the ids (0: none)")  # fmt: skip
    ap.add_argument("--model", default=None, help="a run folder (default: the shipped model)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report-only", action="store_true",
                    help="only print the report of an earlier run in --out")  # fmt: skip
    args = ap.parse_args()
    if args.report_only:
        if args.out is None:
            ap.error("--report-only needs --out")
        print(report(args.out), end="")
        return
    from punktraits import __version__

    punks = D.load(args.data_dir, progress=False)
    out = args.out or Path(tempfile.mkdtemp(prefix="punktraits-notpunks-"))
    out.mkdir(parents=True, exist_ok=True)
    walls: dict[str, float] = {}
    t = time.perf_counter()
    rows = make_set(out / "notpunks", punks, args.seed)
    walls["make_set"] = time.perf_counter() - t
    mild = make_mild(out / "mild", punks, args.seed)
    sets = {"notpunks": out / "notpunks", "mild": out / "mild"}
    n_real = min(args.n_real, len(punks))
    if n_real > 0:
        ids = np.unique(np.linspace(0, len(punks) - 1, n_real).round().astype(int))
        make_real(out / "real", punks, ids)
        sets.update({render: out / "real" / render for render in REAL_RENDERS})
    print(f"{len(rows)} not-punks ({walls['make_set']:.1f} s), {len(mild)} mild edits and "
          f"{n_real:,} x {len(REAL_RENDERS)} real renders in {out}", flush=True)  # fmt: skip
    for name, folder in sets.items():
        walls[name] = predict_folder(folder, args.model, args.data_dir,
                                     out / f"answers-{name}.jsonl", out / f"predict-{name}.log")  # fmt: skip
        print(f"predicted {name} in {walls[name]:.1f} s", flush=True)
    env = f"PUNKTRAITS_DATA={shlex.quote(args.data_dir)} " if args.data_dir else ""
    info = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "version": __version__,
        "command": env + shlex.join(["python", "benchmarks/notpunks.py", *sys.argv[1:]]),
        "seconds": walls,
    }
    (out / "timings.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    text = report(out)
    (out / "results.md").write_text(text, encoding="utf-8")
    print(text + f"\n(also in {out / 'results.md'}; the answers in {out}/answers-*.jsonl)")


if __name__ == "__main__":
    main()
