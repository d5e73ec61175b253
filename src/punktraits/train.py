"""Training: a generic loop and the two recipes that pick its parts.

- `paper`: the seed paper's protocol (92 binary CNNs on greyscale, 8,000 + 8,000 oversampled
  examples per trait, Adagrad, MSE on the softmax, batch 100, 12 epochs), with the nets trained in
  groups of independent models side by side.
- `ours`: one colour CNN for all 92 traits with a softmax over the types, early stopping on a
  validation part of the training split, and visible labels as targets.

Both write a run folder (see runs.py) and return its metrics.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from . import __version__, runs
from .data import TYPES, Punks, PunktraitsError, split
from .metrics import f1_scores
from .models import PaperNets, PunkNet, palette_of


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def rgba(images: np.ndarray) -> torch.Tensor:
    """Our input: RGBA scaled to [0, 1], channels first. (N, 4, 24, 24) float32."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def oversample(positive: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices: `per_class` positives and `per_class` negatives, drawn with replacement,
    shuffled. `positive` is a 0/1 vector over the candidate rows."""
    pos, neg = np.flatnonzero(positive), np.flatnonzero(positive == 0)
    if len(pos) == 0 or len(neg) == 0:
        raise PunktraitsError("a trait needs positives and negatives in the training split")
    idx = np.concatenate([rng.choice(pos, per_class), rng.choice(neg, per_class)])
    return rng.permutation(idx)


# ---------------------------------------------------------------------------------------------
# The generic loop


@dataclass
class Step:
    """What a training step reports to callbacks."""

    epoch: int
    step: int
    loss: torch.Tensor  # per model in the group, (K,) or scalar
    correct: torch.Tensor  # per model, share of the batch right
    images: int


def fit(
    model: torch.nn.Module,
    batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    loss_fn: Callable[
        [torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ],
    optimiser: torch.optim.Optimizer,
    epochs: int,
    on_step: Callable[[Step], None] | None = None,
    on_epoch: Callable[[int], bool] | None = None,
) -> None:
    """Train `model` for `epochs`; `loss_fn(out, y)` returns (loss to minimise, per-model loss,
    per-model accuracy); `on_epoch(epoch)` may return True to stop early."""
    for epoch in range(epochs):
        model.train()
        for step, (x, y) in enumerate(batches(epoch)):
            out = model(x)
            loss, per_model, correct = loss_fn(out, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if on_step:
                on_step(Step(epoch, step, per_model.detach(), correct.detach(), len(x)))
        if on_epoch and on_epoch(epoch):
            break


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class TrainConfig:
    recipe: str = "ours"  # "ours" or "paper"
    epochs: int | None = None  # None: the recipe's default (12 for both; ours may stop early)
    traits: tuple[str, ...] = ()  # paper recipe: train only these nets (default all 92)
    seed: int = 0  # seeds weights, sampling and the split's validation part
    split_seed: int = 0  # seeds the 8,000 / 2,000 train/test split
    n_test: int = 2000  # test punks
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", ...
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    variant: str = "code"  # paper recipe: "code" (authors' main.py) or "text" (the paper's prose)
    group: int | None = (
        None  # paper recipe: nets trained side by side (None: all on CUDA, 1 on CPU)
    )
    per_class: int = 8000  # paper recipe: oversampled positives (and negatives) per trait
    batch_size: int | None = None  # None: the recipe's default (paper 100, ours 64)
    dry_run: bool = False  # a tiny budget that runs every code path (CI, smoke tests)
    extra: dict = field(default_factory=dict)  # recipe knobs recorded as given

    def resolved_epochs(self) -> int:
        if self.epochs is not None:
            return self.epochs
        return 12


def _device(name: str) -> torch.device:
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PunktraitsError(f"--device {name}: CUDA is not available here; use --device cpu")
    return dev


def _split_ids(punks: Punks, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    return split(punks.labels, n_test=cfg.n_test, seed=cfg.split_seed)


def _base_config(punks: Punks, cfg: TrainConfig, device: torch.device) -> dict:
    return {
        "recipe": cfg.recipe,
        "version": __version__,
        "seed": cfg.seed,
        "split_seed": cfg.split_seed,
        "n_test": cfg.n_test,
        "epochs": cfg.resolved_epochs(),
        "data_sha256": punks.sha256,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "train_config": asdict(cfg),
    }


# ---------------------------------------------------------------------------------------------
# The paper's recipe


def _mse_softmax(positive_index: int):
    def loss_fn(out: torch.Tensor, y: torch.Tensor):
        # out (B, K, 2) softmax; y (B, K) 0/1. Keras MSE: mean over the 2 outputs and the batch.
        has = y if positive_index == 1 else 1 - y
        target = F.one_hot(has.long(), 2).float()  # (B, K, 2)
        per_model = ((out - target) ** 2).mean(dim=(0, 2))  # (K,)
        correct = (out.argmax(-1) == has).float().mean(0)  # (K,)
        return per_model.sum(), per_model, correct  # the sum keeps each net's gradient its own

    return loss_fn


def train_paper(punks: Punks, cfg: TrainConfig, out: Path, progress: bool = True) -> dict:
    """The paper's protocol, resumable per trait: finished nets are kept in `out/nets/`."""
    device = _device(cfg.device)
    names = list(cfg.traits) or list(punks.traits)
    unknown = [t for t in names if t not in punks.traits]
    if unknown:
        raise PunktraitsError(f"unknown trait(s) {unknown}; see `punktraits data` for the 92 names")
    epochs = cfg.resolved_epochs()
    per_class = 50 if cfg.dry_run else cfg.per_class
    batch = cfg.batch_size or 100
    # Side by side wins on CUDA; on a CPU, grouped convolutions are slower than one net at a
    # time (benchmarks/paper_trainer.py), so there the default is the plain loop.
    group = cfg.group or (len(names) if device.type == "cuda" else 1)
    train_ids, test_ids = _split_ids(punks, cfg)

    config = _base_config(punks, cfg, device)
    config.update(
        model={"name": "PaperNets", "variant": cfg.variant},
        traits=names,
        input="grey",
        batch_size=batch,
        per_class=per_class,
        optimiser={"name": "Adagrad", "lr": 0.01, "lr_decay": 0.01},
        group=group,
    )
    runs.start(out, config, train_ids, test_ids)

    x_all = torch.from_numpy(grey(punks.images)).to(device)  # (N, 24, 24)
    y_all = torch.from_numpy(punks.labels).to(device)
    done = runs.finished_paper_nets(out, names)
    todo = [t for t in names if t not in done]
    steps_per_epoch = 2 * per_class // batch
    t0 = time.perf_counter()
    n_groups = -(-len(todo) // group)
    bar = tqdm(total=n_groups * epochs * steps_per_epoch, desc="paper", unit="step",
               disable=not progress)  # fmt: skip
    seen = 0  # images through the nets in this session, for the images/s readout
    for g in range(0, len(todo), group):
        chunk = todo[g : g + group]
        cols = [punks.traits.index(t) for t in chunk]
        nets = []
        samples = []
        for j in cols:
            torch.manual_seed(cfg.seed * 1000 + j)  # each net's init depends on its trait only
            nets.append(PaperNets(1, cfg.variant))
            rng = np.random.default_rng([cfg.seed, j])
            samples.append((rng, train_ids[oversample(punks.labels[train_ids, j], per_class, rng)]))
        model = PaperNets.stack(nets).to(device)
        opt = torch.optim.Adagrad(model.parameters(), lr=0.01, lr_decay=0.01)
        k = len(chunk)
        hist = {
            t: {"loss": [], "accuracy": [], "test_loss": [], "test_accuracy": []} for t in chunk
        }
        col_t = torch.tensor(cols, device=device)

        def batches(epoch: int):
            # Keras' fit(shuffle=True): the same 16,000 examples, reshuffled every epoch.
            order = np.stack([ids[rng.permutation(len(ids))] for rng, ids in samples])  # (K, 2P)
            order_t = torch.from_numpy(order).to(device)
            for s in range(steps_per_epoch):
                idx = order_t[:, s * batch : (s + 1) * batch]  # (K, B)
                x = x_all[idx].permute(1, 0, 2, 3)  # (B, K, 24, 24)
                y = y_all[idx, col_t[:, None]].T  # (B, K)
                yield x, y

        step_loss: list[torch.Tensor] = []  # (K,) per step; read back once per epoch (no sync)
        step_acc: list[torch.Tensor] = []

        def on_step(s: Step):
            nonlocal seen
            seen += s.images * k
            step_loss.append(s.loss)
            step_acc.append(s.correct)
            bar.update(1)
            if s.step % 40 == 0:
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix_str(
                    f"{chunk[0]}{'…' if k > 1 else ''} ep {s.epoch + 1}/{epochs} "
                    f"loss {float(s.loss.mean()):.4f} {rate:,.0f} img/s"
                )

        loss_fn = _mse_softmax(model.positive_index)

        def on_epoch(epoch: int) -> bool:
            # Monitoring only (the paper's Figs. 11-12): the natural test split, nothing selected.
            out_test = predict_paper(model, x_all[test_ids], device)  # (N, K, 2)
            _, per_model, correct = loss_fn(out_test, y_all[test_ids][:, col_t])
            losses, accs = torch.stack(step_loss).T.tolist(), torch.stack(step_acc).T.tolist()
            step_loss.clear()
            step_acc.clear()
            for i, t in enumerate(chunk):
                hist[t]["loss"] += [round(v, 5) for v in losses[i]]
                hist[t]["accuracy"] += [round(v, 4) for v in accs[i]]
                hist[t]["test_loss"].append(round(float(per_model[i]), 5))
                hist[t]["test_accuracy"].append(round(float(correct[i]), 4))
            return False

        t_group = time.perf_counter()
        fit(model, batches, loss_fn, opt, epochs, on_step, on_epoch)
        seconds = (time.perf_counter() - t_group) / k
        for t, net in zip(chunk, model.cpu().unstack()):
            runs.save_paper_net(out, t, net, {**hist[t], "train_seconds": seconds})
    bar.close()
    return runs.finish(out, punks)


@torch.inference_mode()
def predict_paper(
    model: PaperNets, x: torch.Tensor, device, batch: int | None = None
) -> torch.Tensor:
    """The softmax of each of the K nets for every grey image in x (N, 24, 24) -> (N, K, 2).

    Batches hold about 4,096 image-nets: the first convolution's output is B x K x 32 x 23 x 23
    floats, 6 GB for 1,000 images through all 92 nets, 0.3 GB for 44."""
    batch = batch or max(1, 4096 // model.k)
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch].to(device)
        out.append(model(xb[:, None].expand(-1, model.k, -1, -1)))
    model.train()
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# Our recipe


def _structured_loss(type_weight: torch.Tensor, pos_weight: torch.Tensor):
    def loss_fn(logits: torch.Tensor, y: torch.Tensor):
        # Types: one of 5, a softmax; accessories: independent. Both weighted for rarity: there
        # are 7 Aliens among 7,200 training punks, and the softmax would otherwise absorb them.
        types = F.cross_entropy(
            logits[:, : len(TYPES)], y[:, : len(TYPES)].argmax(1), weight=type_weight
        )
        acc = F.binary_cross_entropy_with_logits(
            logits[:, len(TYPES) :], y[:, len(TYPES) :].float(), pos_weight=pos_weight
        )
        loss = types + 4 * acc  # acc is a mean over 87 columns: weight it up against the types
        return loss, loss.detach(), exact_match(logits.detach(), y)

    return loss_fn


def exact_match(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Share of rows whose 92 decisions (type argmax, accessories logit >= 0) all equal y."""
    n = len(TYPES)
    types = logits[:, :n].argmax(1) == y[:, :n].argmax(1)
    accs = ((logits[:, n:] >= 0) == y[:, n:].bool()).all(1)
    return (types & accs).float().mean()


def decide(prob: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """0/1 traits from probabilities (N, 92): exactly one type (argmax), accessories >= threshold."""
    pred = np.zeros(prob.shape, np.uint8)
    pred[np.arange(len(prob)), prob[:, : len(TYPES)].argmax(1)] = 1
    th = 0.5 if thresholds is None else thresholds[len(TYPES) :]
    pred[:, len(TYPES) :] = prob[:, len(TYPES) :] >= th
    return pred


@torch.inference_mode()
def predict_ours(model: PunkNet, x: torch.Tensor, batch: int = 1024) -> np.ndarray:
    model.eval()
    out = [model.probabilities(model(x[i : i + batch])) for i in range(0, len(x), batch)]
    model.train()
    return torch.cat(out).cpu().numpy()


def train_ours(punks: Punks, cfg: TrainConfig, out: Path, progress: bool = True) -> dict:
    """One colour CNN for all traits; epoch chosen on a validation part of the training split."""
    device = _device(cfg.device)
    seed_everything(cfg.seed)
    epochs = 2 if cfg.dry_run else cfg.resolved_epochs()
    batch = cfg.batch_size or 64
    lr = float(cfg.extra.get("lr", 4e-3))
    patience = int(cfg.extra.get("patience", 4))
    train_ids, test_ids = _split_ids(punks, cfg)
    # Validation: 10% of the training split, stratified the same way, seeded by `seed`.
    fit_pos, val_pos = split(punks.labels[train_ids], n_test=len(train_ids) // 10, seed=cfg.seed)
    fit_ids, val_ids = train_ids[fit_pos], train_ids[val_pos]
    # Hidden labels have no pixel: learning them would teach the net to guess, so the targets
    # are the visible labels when hidden.csv is known.
    target = punks.visible if punks.visible is not None else punks.labels

    palette = palette_of(torch.from_numpy(punks.images[fit_ids]))  # colours seen in training only
    model = PunkNet(len(palette), len(punks.traits))
    model.palette.copy_(palette)
    model.to(device)
    config = _base_config(punks, cfg, device)
    config.update(
        model={"name": "PunkNet", **model.config()},
        traits=list(punks.traits),
        input="rgba",
        target="visible" if punks.visible is not None else "official",
        batch_size=batch,
        optimiser={"name": "AdamW", "lr": lr, "weight_decay": 0.05, "schedule": "onecycle"},
        validation_ids=val_ids.tolist(),
    )
    runs.start(out, config, train_ids, test_ids)
    from .predict import write_palette

    write_palette(out, punks.images)  # colours only, for normalising input images

    idx_all = model.colour_index(rgba(punks.images).to(device))  # (N, 24, 24), once
    y_all = torch.from_numpy(target).to(device)
    counts = y_all[fit_ids].sum(0).float()
    pos_weight = ((len(fit_ids) - counts) / counts.clamp(min=1)).sqrt()[len(TYPES) :]
    type_weight = (counts.max() / counts.clamp(min=1)).sqrt()[: len(TYPES)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps = (len(fit_ids) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.15
    )
    fit_t = torch.from_numpy(fit_ids).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict] = []
    best = {"score": -1.0, "state": None, "epoch": -1}
    losses: list[float] = []  # per step, for the report's training curves
    accuracies: list[float] = []
    loss_fn = _structured_loss(type_weight, pos_weight)
    t0 = time.perf_counter()
    bar = tqdm(total=epochs * steps, desc="ours", unit="step", disable=not progress)

    def batches(epoch: int):
        perm = fit_t[torch.randperm(len(fit_t), generator=gen).to(device)]
        for s in range(steps):
            b = perm[s * batch : (s + 1) * batch]
            yield idx_all[b], y_all[b]

    def on_step(s: Step):
        sched.step()
        losses.append(round(float(s.loss), 5))
        accuracies.append(round(float(s.correct), 4))
        bar.update(1)

    @torch.inference_mode()
    def on_epoch(epoch: int) -> bool:
        model.eval()
        prob = model.probabilities(model(idx_all[val_ids])).cpu().numpy()
        # Monitoring only (the paper's Figs. 11-12): the test split is never used to select.
        _, test_loss, test_acc = loss_fn(model(idx_all[test_ids]), y_all[test_ids])
        model.train()
        f1 = f1_scores(target[val_ids], decide(prob))
        score = float(f1.mean())
        elapsed = time.perf_counter() - t0
        history.append({
            "epoch": epoch + 1, "seconds": round(elapsed, 2),
            "train_loss": round(float(np.mean(losses[-steps:])), 5),
            "val_macro_f1": round(score, 5), "val_min_f1": round(float(f1.min()), 5),
            "val_traits_below_1": int((f1 < 1).sum()),
            "test_loss": round(float(test_loss), 5), "test_accuracy": round(float(test_acc), 4),
        })  # fmt: skip
        bar.set_postfix_str(f"ep {epoch + 1} val F1 {score:.4f} ({int((f1 < 1).sum())} below 1)")
        if score > best["score"]:
            best.update(score=score, epoch=epoch, state={
                k: v.detach().clone() for k, v in model.state_dict().items()})  # fmt: skip
        return score >= 1.0 or epoch - best["epoch"] >= patience

    fit(model, batches, loss_fn, opt, epochs, on_step, on_epoch)
    bar.close()
    model.load_state_dict(best["state"])
    train_seconds = time.perf_counter() - t0
    runs.save_ours(out, model.cpu(), {
        "epochs": history, "best_epoch": best["epoch"] + 1,
        "train_seconds": round(train_seconds, 2), "steps_per_epoch": steps,
        "steps": {"loss": losses, "accuracy": accuracies},  # training batches, visible labels
    })  # fmt: skip
    return runs.finish(out, punks)


RECIPES = {"paper": train_paper, "ours": train_ours}


def train(punks: Punks, cfg: TrainConfig, out: Path, progress: bool = True) -> dict:
    if cfg.recipe not in RECIPES:
        raise PunktraitsError(f"unknown recipe {cfg.recipe!r}; choose one of {sorted(RECIPES)}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return RECIPES[cfg.recipe](punks, cfg, Path(out), progress)
