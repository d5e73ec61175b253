"""Pictures of punks: explanation sheets (a punk and its heatmaps) and framed punk grids."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

BLUE = np.array([0x63, 0x85, 0x96], np.float32)  # the collection's site background #638596


def render_explanation(punk: np.ndarray, heat: dict[str, np.ndarray], probs: dict, zoom: int = 12):
    """The punk enlarged, then one panel per trait: the punk in grey with the heat in red."""
    side = 24 * zoom
    pad, title = 8, 18
    panels = [("punk", None)] + list(heat.items())
    sheet = Image.new("RGB", (len(panels) * (side + pad) + pad, side + title + 2 * pad), "white")
    draw = ImageDraw.Draw(sheet)
    checker = (np.indices((24, 24)).sum(0) % 2 * 30 + 200).astype(np.uint8)
    a = punk[..., 3:4] / 255.0
    base = punk[..., :3] * a + checker[..., None] * (1 - a)  # the punk on a light checkerboard
    for k, (name, h) in enumerate(panels):
        if h is None:
            img = base
            label = "input"
        else:
            grey = base.mean(-1, keepdims=True).repeat(3, -1) * 0.6 + 80
            w = (h / h.max() if h.max() > 0 else h)[..., None]
            img = grey * (1 - w) + np.array([230.0, 20, 20]) * w
            label = f"{name} {probs.get(name, 0):.2f}"
        tile = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
        x = pad + k * (side + pad)
        sheet.paste(tile.resize((side, side), Image.NEAREST), (x, pad + title))
        draw.text((x, pad), label, fill="black")
    return sheet


def punk_grid(punks: np.ndarray, frames: list[str], cols: int = 8, zoom: int = 4) -> Image.Image:
    """Punks enlarged with nearest neighbour on the collection's blue, each in a coloured frame."""
    side, pad = 24 * zoom, 4
    rows = max(1, -(-len(punks) // cols))
    sheet = Image.new("RGB", (cols * (side + 2 * pad), rows * (side + 2 * pad)), "white")
    for k, (p, frame) in enumerate(zip(punks, frames)):
        a = p[..., 3:4] / 255.0
        rgb = (p[..., :3] * a + BLUE * (1 - a)).astype(np.uint8)
        tile = Image.fromarray(rgb, "RGB").resize((side, side), Image.NEAREST)
        r, c = divmod(k, cols)
        x, y = c * (side + 2 * pad), r * (side + 2 * pad)
        sheet.paste(Image.new("RGB", (side + 2 * pad, side + 2 * pad), frame), (x, y))
        sheet.paste(tile, (x + pad, y + pad))
    return sheet
