"""Pictures of punks: explanation sheets (a punk and its heatmaps) and framed punk grids."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

BLUE = np.array([0x63, 0x85, 0x96], np.float32)  # the collection's site background #638596


def on_checker(punk: np.ndarray) -> np.ndarray:
    """The punk's RGB on a light checkerboard where it is transparent: (24, 24, 3) float."""
    checker = (np.indices((24, 24)).sum(0) % 2 * 30 + 200).astype(np.uint8)
    a = punk[..., 3:4] / 255.0
    return punk[..., :3] * a + checker[..., None] * (1 - a)


def render_explanation(punk: np.ndarray, heat: dict[str, np.ndarray], probs: dict, zoom: int = 12,
                       drawn: np.ndarray | None = None, differ: np.ndarray | None = None):  # fmt: skip
    """The punk enlarged; when given, the answer drawn back beside it (differing pixels in red);
    then one panel per trait: the punk in grey with the heat in red."""
    side = 24 * zoom
    pad, title = 8, 18
    base = on_checker(punk)
    panels: list[tuple[str, np.ndarray]] = [("input", base)]
    if drawn is not None:
        back = on_checker(drawn)
        n = 0 if differ is None else int(differ.sum())
        if n:
            back[differ] = (230.0, 20, 20)
        panels.append(
            ("drawn back: pixel for pixel" if n == 0 else f"drawn back: {n} differ", back)
        )
    for name, h in heat.items():
        grey = base.mean(-1, keepdims=True).repeat(3, -1) * 0.6 + 80
        w = (h / h.max() if h.max() > 0 else h)[..., None]
        panels.append(
            (f"{name} {probs.get(name, 0):.2f}", grey * (1 - w) + np.array([230.0, 20, 20]) * w)
        )
    sheet = Image.new("RGB", (len(panels) * (side + pad) + pad, side + title + 2 * pad), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (label, img) in enumerate(panels):
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
