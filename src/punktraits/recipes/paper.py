"""The seed paper's recipe, faithfully: 92 binary CNNs (models.PaperNets) on greyscale, 8,000 +
8,000 oversampled examples per trait, Adagrad, MSE on the softmax, batch 100, 12 epochs, no early
stopping. The nets are trained in groups of independent models side by side (one grouped module
on a GPU), and a run resumes per trait: a net whose files exist in `nets/` is finished.

    run/nets/NN-name.safetensors + NN-name.json    one net per trait: weights, per-step history
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..data import Punks
from ..errors import PunktraitsError
from ..files import load_weights, read_json, save_weights, slug, write_json
from ..loop import Step, device, fit
from ..models import PaperNets
from .base import Recipe, Split, TrainConfig, load_state


def grey(images: np.ndarray) -> np.ndarray:
    """The paper's input: OpenCV IMREAD_GRAYSCALE of an RGBA PNG, /255. (N, 24, 24) float32.

    Alpha is dropped, so the transparent background (0,0,0,0) becomes 0 like the black outlines.
    OpenCV's PNG reader lets libpng convert (png_set_rgb_to_gray with 0.299/0.587): 15-bit fixed
    point weights 9798/19235/3735, truncated. This equals cv2.imread(punks.png,
    cv2.IMREAD_GRAYSCALE) on all 5,760,000 pixels (checked with opencv-python-headless 5.0.0).
    """
    rgb = images[..., :3].astype(np.int32)
    y = (rgb[..., 0] * 9798 + rgb[..., 1] * 19235 + rgb[..., 2] * 3735) >> 15
    return y.astype(np.float32) / 255.0


def oversample(positive: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices: `per_class` positives and `per_class` negatives, drawn with replacement,
    shuffled. `positive` is a 0/1 vector over the candidate rows."""
    pos, neg = np.flatnonzero(positive), np.flatnonzero(positive == 0)
    if len(pos) == 0 or len(neg) == 0:
        raise PunktraitsError("a trait needs positives and negatives in the training split")
    idx = np.concatenate([rng.choice(pos, per_class), rng.choice(neg, per_class)])
    return rng.permutation(idx)


def mse_softmax(positive_index: int):
    """Keras' MSE on the 2-way softmax, per net: (loss to minimise, per-net loss, accuracy)."""

    def loss_fn(out: torch.Tensor, y: torch.Tensor):
        # out (B, K, 2) softmax; y (B, K) 0/1. Keras MSE: mean over the 2 outputs and the batch.
        has = y if positive_index == 1 else 1 - y
        target = F.one_hot(has.long(), 2).float()  # (B, K, 2)
        per_model = ((out - target) ** 2).mean(dim=(0, 2))  # (K,)
        correct = (out.argmax(-1) == has).float().mean(0)  # (K,)
        return per_model.sum(), per_model, correct  # the sum keeps each net's gradient its own

    return loss_fn


@torch.inference_mode()
def predict(
    model: PaperNets, x: torch.Tensor, device="cpu", batch: int | None = None
) -> torch.Tensor:
    """The softmax of each of the K nets for every grey image in x (N, 24, 24) -> (N, K, 2), the
    model left in eval mode.

    Batches hold about 4,096 image-nets: the first convolution's output is B x K x 32 x 23 x 23
    floats, 6 GB for 1,000 images through all 92 nets, 0.3 GB for 44."""
    batch = batch or max(1, 4096 // model.k)
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch].to(device)
        out.append(model(xb[:, None].expand(-1, model.k, -1, -1)))
    return torch.cat(out)


def net_stem(index: int, trait: str) -> str:
    return f"{index:02d}-{slug(trait)}"


class GroupTraining:
    """One group of nets trained side by side: its batches, and its per-net history."""

    def __init__(self, model, samples, cols, x_all, y_all, test_ids, epochs, batch, bar, rate):
        self.model, self.samples, self.x_all, self.y_all = model, samples, x_all, y_all
        self.test_ids, self.epochs, self.batch, self.bar, self.rate = (
            test_ids, epochs, batch, bar, rate)  # fmt: skip
        self.cols = torch.tensor(cols, device=x_all.device)
        self.steps = len(samples[0][1]) // batch
        self.loss_fn = mse_softmax(model.positive_index)
        self.hist = [{"loss": [], "accuracy": [], "test_loss": [], "test_accuracy": []}
                     for _ in cols]  # fmt: skip
        self.step_loss: list[torch.Tensor] = []  # (K,) per step; read back once per epoch
        self.step_acc: list[torch.Tensor] = []
        self.label = ""

    def batches(self, epoch: int):
        # Keras' fit(shuffle=True): the same 16,000 examples, reshuffled every epoch.
        order = np.stack([ids[rng.permutation(len(ids))] for rng, ids in self.samples])  # (K, 2P)
        order_t = torch.from_numpy(order).to(self.x_all.device)
        for s in range(self.steps):
            idx = order_t[:, s * self.batch : (s + 1) * self.batch]  # (K, B)
            x = self.x_all[idx].permute(1, 0, 2, 3)  # (B, K, 24, 24)
            y = self.y_all[idx, self.cols[:, None]].T  # (B, K)
            yield x, y

    def on_step(self, s: Step) -> None:
        self.step_loss.append(s.loss)
        self.step_acc.append(s.correct)
        self.bar.update(1)
        rate = self.rate(s.images * len(self.hist))
        if s.step % 40 == 0:
            self.bar.set_postfix_str(f"{self.label} ep {s.epoch + 1}/{self.epochs} "
                                     f"loss {float(s.loss.mean()):.4f} {rate:,.0f} img/s")  # fmt: skip

    def on_epoch(self, epoch: int) -> bool:
        # Monitoring only (the paper's Figs. 11-12): the natural test split, nothing selected.
        out = predict(self.model, self.x_all[self.test_ids], self.x_all.device)  # (N, K, 2)
        _, per_model, correct = self.loss_fn(out, self.y_all[self.test_ids][:, self.cols])
        self.model.train()
        losses = torch.stack(self.step_loss).T.tolist()
        accs = torch.stack(self.step_acc).T.tolist()
        self.step_loss.clear()
        self.step_acc.clear()
        for i, h in enumerate(self.hist):
            h["loss"] += [round(v, 5) for v in losses[i]]
            h["accuracy"] += [round(v, 4) for v in accs[i]]
            h["test_loss"].append(round(float(per_model[i]), 5))
            h["test_accuracy"].append(round(float(correct[i]), 4))
        return False


class Paper(Recipe):
    name = "paper"
    help = "the seed paper's 92 binary CNNs on greyscale"

    def describe(self, punks: Punks, cfg: TrainConfig, split: Split) -> dict:
        names = list(cfg.traits) or list(punks.traits)
        unknown = [t for t in names if t not in punks.traits]
        if unknown:
            raise PunktraitsError(
                f"unknown trait(s) {unknown}; see `punktraits data` for the 92 names"
            )
        dev = device(cfg.device)
        # Side by side wins on CUDA; on a CPU, grouped convolutions are slower than one net at
        # a time (benchmarks/paper_trainer.py), so there the default is the plain loop.
        return {
            "model": {"name": "PaperNets", "variant": cfg.variant},
            "traits": names,
            "input": "grey",
            "batch_size": cfg.batch_size or 100,
            "per_class": 50 if cfg.dry_run else cfg.per_class,
            "optimiser": {"name": "Adagrad", "lr": 0.01, "lr_decay": 0.01},
            "group": cfg.group or (len(names) if dev.type == "cuda" else 1),
        }

    @staticmethod
    def finished(run: Path, traits: list[str]) -> set[str]:
        return {t for i, t in enumerate(traits)
                if (run / "nets" / f"{net_stem(i, t)}.safetensors").exists()
                and (run / "nets" / f"{net_stem(i, t)}.json").exists()}  # fmt: skip

    def train(self, punks: Punks, cfg: TrainConfig, run: Path, config: dict, split: Split,
              progress: bool = True) -> None:  # fmt: skip
        dev = device(cfg.device)
        names, epochs = config["traits"], config["epochs"]
        batch, per_class, group = config["batch_size"], config["per_class"], config["group"]
        x_all = torch.from_numpy(grey(punks.images)).to(dev)  # (N, 24, 24)
        y_all = torch.from_numpy(punks.labels).to(dev)
        done = self.finished(run, names)
        todo = [t for t in names if t not in done]
        steps = 2 * per_class // batch
        n_groups = -(-len(todo) // group)
        bar = tqdm(total=n_groups * epochs * steps, desc="paper", unit="step",
                   disable=not progress)  # fmt: skip
        t0, seen = time.perf_counter(), [0]  # images through the nets, for the img/s readout

        def rate(images: int) -> float:
            seen[0] += images
            return seen[0] / max(time.perf_counter() - t0, 1e-9)

        (run / "nets").mkdir(exist_ok=True)
        for g in range(0, len(todo), group):
            chunk = todo[g : g + group]
            cols = [punks.traits.index(t) for t in chunk]
            nets, samples = [], []
            for j in cols:
                torch.manual_seed(cfg.seed * 1000 + j)  # each net's init depends on its trait only
                nets.append(PaperNets(1, cfg.variant))
                rng = np.random.default_rng([cfg.seed, j])
                rows = oversample(punks.labels[split.train, j], per_class, rng)
                samples.append((rng, split.train[rows]))
            model = PaperNets.stack(nets).to(dev)
            opt = torch.optim.Adagrad(model.parameters(), lr=0.01, lr_decay=0.01)
            job = GroupTraining(model, samples, cols, x_all, y_all, split.test, epochs, batch,
                                bar, rate)  # fmt: skip
            job.label = chunk[0] + ("…" if len(chunk) > 1 else "")
            t_group = time.perf_counter()
            fit(model, job.batches, job.loss_fn, opt, epochs, job.on_step, job.on_epoch)
            seconds = (time.perf_counter() - t_group) / len(chunk)
            for t, net, h in zip(chunk, model.cpu().unstack(), job.hist):
                stem = net_stem(names.index(t), t)
                write_json(run / "nets" / f"{stem}.json",
                           {"trait": t, **h, "train_seconds": seconds})  # fmt: skip
                # The weights last: they mark the net as done.
                save_weights(run / "nets" / f"{stem}.safetensors", net.state_dict())
        bar.close()

    def load(self, run: Path, config: dict) -> PaperNets:
        nets = []
        for i, t in enumerate(config["traits"]):
            net = PaperNets(1, config["model"]["variant"])
            load_state(net, load_weights(run / "nets" / f"{net_stem(i, t)}.safetensors"), run)
            nets.append(net)
        return PaperNets.stack(nets).eval()

    def probabilities(self, model: PaperNets, images: np.ndarray) -> np.ndarray:
        soft = predict(model, torch.from_numpy(grey(images)))
        return soft[..., model.positive_index].numpy()  # the paper: argmax of a 2-way softmax

    def scores(self, model: PaperNets, images: np.ndarray, traits: list[str],
               config: dict) -> np.ndarray:  # fmt: skip
        # Only the nets of the asked traits: 577 images through all 92 nets is 92x the work.
        if not hasattr(model, "_nets"):
            model._nets = model.unstack()  # copied once per loaded model
        sub = PaperNets.stack([model._nets[config["traits"].index(t)] for t in traits])
        soft = predict(sub, torch.from_numpy(grey(images)))  # (N, K, 2)
        return np.log(np.clip(soft[..., sub.positive_index].numpy(), 1e-9, 1.0))

    def history(self, run: Path, config: dict) -> dict:
        return {t: read_json(run / "nets" / f"{net_stem(i, t)}.json")
                for i, t in enumerate(config["traits"])}  # fmt: skip

    def train_seconds(self, history: dict) -> float:
        return sum(h["train_seconds"] for h in history.values())

    def curves(self, history: dict, config: dict) -> dict:
        nets = list(history.values())
        n = min(len(v["loss"]) for v in nets)
        n_ep = min(len(v["test_loss"]) for v in nets)
        return {
            "loss": np.mean([v["loss"][:n] for v in nets], 0).tolist(),
            "accuracy": np.mean([v["accuracy"][:n] for v in nets], 0).tolist(),
            "test_loss": np.mean([v["test_loss"][:n_ep] for v in nets], 0).tolist(),
            "test_accuracy": np.mean([v["test_accuracy"][:n_ep] for v in nets], 0).tolist(),
            "steps_per_epoch": n // max(n_ep, 1),
            "what": f"mean over the {len(nets)} nets; accuracy = share of the batch right",
            "note": "all epochs kept (the paper has no early stopping)",
            "best_epoch": None, "per_trait": history,
        }  # fmt: skip
