"""Adding a recipe is one module and one registration: a linear model over palette one-hots,
defined here, trains, evaluates, predicts, explains and reports through the same commands."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from punktraits import data as D
from punktraits import recipes
from punktraits.cli import cli
from punktraits.files import load_weights, read_json, save_weights, write_json
from punktraits.recipes.base import Recipe, load_state


class PaletteLinear(torch.nn.Module):
    """One weight per (pixel, palette colour, trait): a logit is a sum over the 576 pixels."""

    def __init__(self, palette: list, n_traits: int):
        super().__init__()
        self.register_buffer("palette", torch.tensor(palette, dtype=torch.int64))  # (P, 4)
        self.table = torch.nn.EmbeddingBag(576 * len(palette), n_traits, mode="sum")
        self.bias = torch.nn.Parameter(torch.zeros(n_traits))

    def index(self, images: np.ndarray) -> torch.Tensor:
        """(N, 24, 24, 4) uint8 -> (N, 576) rows of the table (a colour not in the palette
        counts as transparent, the palette's first colour)."""
        key = lambda a: a.astype(np.int64) @ np.array([1 << 24, 1 << 16, 1 << 8, 1])  # noqa: E731
        pal = key(self.palette.numpy())  # sorted: np.unique made the palette
        k = key(images.reshape(len(images), 576, 4))
        colour = np.searchsorted(pal, k).clip(0, len(pal) - 1)
        colour[pal[colour] != k] = 0
        return torch.arange(576) * len(pal) + torch.from_numpy(colour)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.table(rows) + self.bias  # (N, T)


class Linear(Recipe):
    name = "linear"
    help = "a linear model over palette one-hots (a test of the recipe registry)"

    def describe(self, punks, cfg, split):
        palette = np.unique(punks.images[split.train].reshape(-1, 4), axis=0)
        return {"model": {"name": "PaletteLinear", "palette": palette.tolist()},
                "traits": list(punks.traits), "input": "palette one-hot"}  # fmt: skip

    def train(self, punks, cfg, run, config, split, progress=True):
        torch.manual_seed(cfg.seed)
        t0 = time.perf_counter()
        model = PaletteLinear(config["model"]["palette"], len(config["traits"]))
        rows = model.index(punks.images[split.train])
        y = torch.from_numpy(punks.labels[split.train]).float()
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        losses = []
        for _ in range(config["epochs"]):
            for b in torch.randperm(len(rows)).split(500):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(rows[b]), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(round(loss.item(), 5))
        write_json(run / "history.json", {"loss": losses,
                                          "train_seconds": time.perf_counter() - t0})  # fmt: skip
        save_weights(run / "weights.safetensors", model.state_dict())

    def load(self, run, config):
        model = PaletteLinear(config["model"]["palette"], len(config["traits"]))
        load_state(model, load_weights(run / "weights.safetensors"), run)
        return model.eval()

    @torch.inference_mode()
    def probabilities(self, model, images):
        return torch.sigmoid(model(model.index(images))).numpy()

    def history(self, run, config):
        return read_json(run / "history.json")

    def train_seconds(self, history):
        return history["train_seconds"]

    def curves(self, history, config):
        n = len(history["loss"])
        return {"loss": history["loss"], "accuracy": [float("nan")] * n, "test_loss": [],
                "test_accuracy": [], "steps_per_epoch": max(1, n // config["epochs"]),
                "what": "loss only", "note": "no early stopping", "best_epoch": None,
                "per_trait": None}  # fmt: skip


@pytest.fixture
def linear(monkeypatch):
    monkeypatch.setitem(recipes.REGISTRY, "linear", Linear())


def test_a_third_recipe_goes_through_every_command(linear, data_dir, punks, tmp_path):
    run = tmp_path / "linear"
    cli_ = CliRunner()
    r = cli_.invoke(cli, ["train", "--recipe", "linear", "--epochs", "2", "--out", str(run),
                          "--data-dir", str(data_dir)])  # fmt: skip
    assert r.exit_code == 0, r.output
    metrics = read_json(run / "metrics.json")
    assert metrics["recipe"] == "linear" and metrics["n_test"] == 2000
    # A linear model over colours reads the types and some accessories.
    assert metrics["per_trait"]["Male"]["f1"] > 0.95
    assert metrics["macro_f1"] > 0.3  # measured 0.6 (a CNN reaches 0.99)
    assert f"macro F1 {metrics['macro_f1']:.4f}" in r.output

    saved = (run / "metrics.json").read_bytes()
    r = cli_.invoke(cli, ["evaluate", str(run), "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    assert (run / "metrics.json").read_bytes() == saved  # evaluate reproduces it byte for byte

    i = int(np.flatnonzero(punks.labels[:, D.TRAIT_INDEX["Earring"]])[0])
    png = tmp_path / "punk.png"
    Image.fromarray(punks.images[i]).resize((192, 192), Image.NEAREST).save(png)
    r = cli_.invoke(cli, ["predict", str(png), "--model", str(run), "--format", "json"])
    assert r.exit_code == 0, r.output
    (pred,) = json.loads(r.output)
    assert set(pred["probabilities"]) == set(D.TRAITS)
    assert pred["type"] == D.TYPES[int(punks.labels[i, :5].argmax())]

    r = cli_.invoke(cli, ["explain", str(png), "--model", str(run), "--trait", "Earring"])
    assert r.exit_code == 0, r.output
    assert Path(str(png) + ".explain.png").exists()

    r = cli_.invoke(cli, ["report", str(run), "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    html = (run / "report.html").read_text("utf-8")
    assert "linear" in html and f"{metrics['macro_f1']:.4f}" in html


def test_an_unknown_recipe_is_one_line(data_dir, tmp_path):
    r = CliRunner().invoke(cli, ["train", "--recipe", "nope", "--out", str(tmp_path / "x"),
                                 "--data-dir", str(data_dir)])  # fmt: skip
    assert r.exit_code != 0
    assert "unknown recipe 'nope'; choose one of ours, paper" in str(r.exception or r.output)
