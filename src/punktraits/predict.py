"""Predict the traits of any punk image, explain them, export the network.

    from punktraits import load_model
    model = load_model()                 # the shipped default model, or load_model("runs/x")
    p = model.predict("punk.jpg")        # a path, bytes, a PIL image or a (24, 24, 4) array
    p.type, p.accessories, p.probabilities["Earring"], p.normalized

Images go through `normalize.normalize` (any scale, background, JPEG noise -> the exact 24x24
RGBA punk). Explanations are occlusion maps: each pixel in turn is made transparent (the
background) and the drop of the trait's score is that pixel's heat.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import runs
from .data import TYPES, PunktraitsError
from .normalize import ImageError, Normalized, normalize

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}


@dataclass
class Prediction:
    """The traits of one image."""

    file: str | None  # where it came from, if a file
    type: str | None  # one of Alien, Ape, Zombie, Female, Male
    accessories: list[str]  # the predicted accessories, in trait order
    probabilities: dict[str, float]  # trait name -> probability
    normalized: dict | None  # how the image was normalised (see normalize.Normalized)
    error: str | None = None  # None, or the one-line reason the image could not be read

    def to_dict(self) -> dict:
        return asdict(self)


class Predictor:
    """A trained model with its palette, ready for images."""

    def __init__(self, run: str | os.PathLike | None = None):
        self.model, self.config = runs.load_model(run)
        self.traits: list[str] = list(self.config["traits"])
        self.run = runs.DEFAULT_MODEL if run is None else Path(run)
        pal_file = self.run / "palette.json"
        if not pal_file.exists():
            pal_file = runs.DEFAULT_MODEL / "palette.json"
        pal = runs.read_json(pal_file)
        self.palette = np.array(pal["colours"], np.uint8)  # (P, 4) RGBA of the collection
        self.counts = np.array(pal["counts"], np.int64)

    # -- images -> punks -------------------------------------------------------------------

    def to_punk(self, image, name: str | None = None) -> tuple[np.ndarray, Normalized | None]:
        """(24, 24, 4) uint8 punk of any supported input, and how it was found."""
        if isinstance(image, np.ndarray):
            if image.shape != (24, 24, 4) or image.dtype != np.uint8:
                raise ImageError(f"{name or 'array'}: expected a (24, 24, 4) uint8 RGBA array")
            return image, None
        if isinstance(image, Image.Image):
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            image = buf.getvalue()
        return normalize(image, self.palette, self.counts, name=name)

    # -- prediction ------------------------------------------------------------------------

    def probabilities(self, punks: np.ndarray) -> np.ndarray:
        """P(trait) for (N, 24, 24, 4) uint8 punks: (N, T)."""
        return runs.probabilities(self.model, self.config, punks)

    def _predictions(self, punks: np.ndarray, infos, names) -> list[Prediction]:
        prob = self.probabilities(punks)
        pred = runs.predictions(self.model, self.config, prob)
        out = []
        for i in range(len(punks)):
            t = [n for n in TYPES if n in self.traits]
            kind = t[int(np.argmax([prob[i, self.traits.index(n)] for n in t]))] if t else None
            acc = [n for j, n in enumerate(self.traits) if pred[i, j] and n not in TYPES]
            probs = {n: round(float(prob[i, j]), 6) for j, n in enumerate(self.traits)}
            info = infos[i].to_dict() if infos[i] is not None else None
            out.append(Prediction(names[i], kind, acc, probs, info))
        return out

    def predict(self, image, name: str | None = None) -> Prediction:
        """The traits of one image; raises ImageError if it cannot be read as a punk."""
        if name is None and isinstance(image, (str, os.PathLike)):
            name = str(image)
        punk, info = self.to_punk(image, name)
        return self._predictions(punk[None], [info], [name])[0]

    def predict_batch(self, images: Iterable, batch_size: int = 256) -> list[Prediction]:
        """The traits of many images; one that cannot be read gets `error` set instead."""
        return list(self.iter_predict(images, batch_size))

    def iter_predict(self, images: Iterable, batch_size: int = 256) -> Iterator[Prediction]:
        """Stream predictions in input order, `batch_size` images in memory at a time."""
        chunk: list = []
        for image in images:
            chunk.append(image)
            if len(chunk) == batch_size:
                yield from self._predict_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._predict_chunk(chunk)

    def _predict_chunk(self, images: list) -> list[Prediction]:
        results: list[Prediction | None] = [None] * len(images)
        punks, infos, names, where = [], [], [], []
        for k, image in enumerate(images):
            name = str(image) if isinstance(image, (str, os.PathLike)) else None
            try:
                punk, info = self.to_punk(image, name)
            except ImageError as e:
                results[k] = Prediction(name, None, [], {}, None, str(e))
                continue
            punks.append(punk)
            infos.append(info)
            names.append(name)
            where.append(k)
        if punks:
            for k, p in zip(where, self._predictions(np.stack(punks), infos, names)):
                results[k] = p
        return results  # type: ignore[return-value]

    # -- explanation -----------------------------------------------------------------------

    @torch.inference_mode()
    def occlusion(self, punk: np.ndarray, traits: list[str]) -> dict[str, np.ndarray]:
        """Per trait, a (24, 24) map: how much the trait's score falls when that pixel is made
        transparent (the background). Scores are logits for PunkNet, log-probabilities else."""
        variants = np.repeat(punk[None], 24 * 24 + 1, 0)  # [0] is the punk itself
        ys, xs = np.divmod(np.arange(24 * 24), 24)
        variants[np.arange(1, 24 * 24 + 1), ys, xs] = 0
        if self.config["model"]["name"] == "PunkNet":
            from .train import rgba

            scores = self.model(rgba(variants)).numpy()  # (577, T) logits
            cols = [self.traits.index(t) for t in traits]
        else:
            from .models import PaperNets
            from .train import grey, predict_paper

            # Only the nets of the asked traits: 577 images through all 92 nets is 92x the work.
            if getattr(self, "_nets", None) is None:
                self._nets = self.model.unstack()  # copied once per Predictor
            nets = self._nets
            sub = PaperNets.stack([nets[self.traits.index(t)] for t in traits]).eval()
            soft = predict_paper(sub, torch.from_numpy(grey(variants)), "cpu")  # (577, K, 2)
            scores = np.log(np.clip(soft[..., sub.positive_index].numpy(), 1e-9, 1.0))
            cols = list(range(len(traits)))
        out = {}
        for t, j in zip(traits, cols):
            out[t] = np.clip(scores[0, j] - scores[1:, j], 0, None).reshape(24, 24)
        return out

    def explain(self, image, trait: str | None = None, zoom: int = 12) -> tuple[Image.Image, dict]:
        """A picture of the punk and, for each predicted trait (or `trait`), its heatmap."""
        if trait is not None and trait not in self.traits:
            raise PunktraitsError(f"unknown trait {trait!r}; see `punktraits data` for the names")
        punk, _ = self.to_punk(image, str(image) if isinstance(image, (str, os.PathLike)) else None)
        pred = self._predictions(punk[None], [None], [None])[0]
        traits = [trait] if trait else [pred.type] + pred.accessories
        heat = self.occlusion(punk, traits)
        return render_explanation(punk, heat, pred.probabilities, zoom), heat

    # -- export ----------------------------------------------------------------------------

    def export_onnx(self, path: str | os.PathLike) -> None:
        """Write the network as ONNX: input `rgba` (N, 4, 24, 24) float in [0, 1], output
        `probabilities` (N, T) in config['traits'] order."""
        if self.config["model"]["name"] != "PunkNet":
            raise PunktraitsError("ONNX export supports our model (recipe ours) only")

        class WithProbabilities(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net.probabilities(self.net(x))

        from .data import atomic_write

        try:
            import onnx  # noqa: F401  (torch's exporter needs it)
        except ImportError:
            raise PunktraitsError(
                "ONNX export needs the onnx package: pip install 'punktraits[onnx]'"
            ) from None
        tmp = Path(path).with_name(f".{Path(path).name}.tmp")
        torch.onnx.export(
            WithProbabilities(self.model).eval(), (torch.zeros(1, 4, 24, 24),), str(tmp),
            input_names=["rgba"], output_names=["probabilities"],
            dynamic_axes={"rgba": {0: "n"}, "probabilities": {0: "n"}}, dynamo=False,
        )  # fmt: skip
        atomic_write(Path(path), tmp.read_bytes())
        tmp.unlink()


def load_model(run: str | os.PathLike | None = None) -> Predictor:
    """The shipped default model, or the run folder `run` (written by `punktraits train`)."""
    return Predictor(run)


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


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; folders searched recursively for image files, in sorted order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            out.append(p)
    return out


def write_palette(run: Path, images: np.ndarray) -> None:
    """Store the collection's colours (and their pixel counts) with a model, for normalising."""
    from .data import atomic_write
    from .normalize import collection_palette

    colours, counts = collection_palette(images)
    atomic_write(
        run / "palette.json",
        json.dumps({"colours": colours.tolist(), "counts": counts.tolist()}).encode(),
    )
