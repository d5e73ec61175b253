"""Our recipe: one colour CNN (models.PunkNet) for all 92 traits, a softmax over the types,
early stopping on a validation part of the training split, and the visible labels as targets."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..data import HEADS, TYPES, Punks, split
from ..errors import PunktraitsError
from ..files import atomic_write, load_weights, read_json, save_weights, write_json
from ..loop import Step, device, fit, seed_everything
from ..metrics import f1_scores
from ..models import PunkNet, palette_of
from .base import Recipe, Split, TrainConfig, load_state

LR = 4e-3  # AdamW, one-cycle schedule
PATIENCE = 4  # epochs without a better validation score before stopping
DRAWN = 60_000  # new punks drawn with the sprites learned from the training split
DRAWN_SHARE = 0.75  # share of each epoch's punks that are drawn ones
BATCH = 128
# Knobs a run may set in TrainConfig.extra (recorded in config.json), with their defaults.
KNOBS = {
    "lr": LR, "embed": 16, "width": 32, "hidden": 256,
    "temper": 0.5,  # drawn accessories are picked by training frequency ** temper
    "head_temper": 0.5,  # drawn heads are picked by training frequency ** head_temper
    "any_pair": 1,  # 1: drawn punks may pair accessories no training punk wears together
    "val_drawn": 2000,  # drawn punks held out of training to join the validation part
    "stop_perfect": 0,  # 1: stop at the first perfect validation score; 0: patience only
    "assume_clear": 1,  # 1: drawn punks take EITHER sprite pixels as not drawn (sprites.py)
    "replay": 0.25,  # share of each epoch's drawn punks that are the hardest (highest loss) seen
}  # fmt: skip


def settings(cfg: TrainConfig) -> dict:
    """The run's KNOBS: those given in cfg.extra (`train --set`), the defaults for the rest."""
    return {k: cfg.extra.get(k, v) for k, v in KNOBS.items()}


def rgba(images: np.ndarray) -> torch.Tensor:
    """Our input: RGBA scaled to [0, 1], channels first. (N, 4, 24, 24) float32."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def decide(prob: np.ndarray) -> np.ndarray:
    """0/1 traits from probabilities (N, 92): exactly one type (argmax), accessories >= 0.5."""
    pred = np.zeros(prob.shape, np.uint8)
    pred[np.arange(len(prob)), prob[:, : len(TYPES)].argmax(1)] = 1
    pred[:, len(TYPES) :] = prob[:, len(TYPES) :] >= 0.5
    return pred


def exact_match(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Share of rows whose 92 decisions (type argmax, accessories logit >= 0) all equal y."""
    n = len(TYPES)
    types = logits[:, :n].argmax(1) == y[:, :n].argmax(1)
    accs = ((logits[:, n:] >= 0) == y[:, n:].bool()).all(1)
    return (types & accs).float().mean()


@torch.inference_mode()
def predict(model: PunkNet, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Probabilities (N, T [+ H heads]) of uint8 RGBA punks (N, 24, 24, 4), the model left in
    eval mode.

    Batches of 64 keep the activations small (evaluate's peak: 340 MiB, 224 of them torch
    itself); larger batches are no faster on a CPU (benchmarks/ours.py)."""
    model.eval()
    lookup = _Lookup.of(model)
    out = [model.probabilities(model(lookup(images[i : i + batch])))
           for i in range(0, len(images), batch)]  # fmt: skip
    return torch.cat(out).cpu().numpy()


class _Lookup:
    """The model's input for uint8 punks: palette indices (N, 24, 24) long, looked up, when
    every pixel is a palette colour exactly (a punk read pixel for pixel: what
    `PunkNet.colour_index` finds too, at distance 0, at a quarter of a folder's model time);
    else RGBA floats, for the model's nearest colours."""

    @staticmethod
    def of(model: PunkNet) -> _Lookup:
        """The model's lookup, kept on it while its palette stays (a batch of one image
        spends ~0.2 ms building it: a tenth of the network's time)."""
        key = (model.palette.data_ptr(), model.palette._version)
        kept = model.__dict__.get("_punktraits_lookup")
        if kept is None or kept[0] != key:
            kept = model.__dict__["_punktraits_lookup"] = (key, _Lookup(model))
        return kept[1]

    def __init__(self, model: PunkNet):
        pal = (model.palette * 255).round().to(torch.uint8).cpu().numpy()
        packed = np.ascontiguousarray(pal).view(np.uint32)[:, 0]
        self.order = np.argsort(packed, kind="stable")
        self.packed = packed[self.order]

    def __call__(self, images: np.ndarray) -> torch.Tensor:
        packed = np.ascontiguousarray(images).view(np.uint32)[..., 0]  # (n, 24, 24)
        at = np.minimum(np.searchsorted(self.packed, packed), len(self.packed) - 1)
        if len(self.packed) and (self.packed[at] == packed).all():
            return torch.from_numpy(self.order[at].astype(np.int64))
        return rgba(images)


class StructuredLoss:
    """Types: one of 5, a softmax; accessories: independent. Both weighted for rarity: there are
    7 Aliens among 7,200 training punks, and the softmax would otherwise absorb them."""

    def __init__(self, type_weight, pos_weight, n_traits: int, head_weight=None):
        self.type_weight, self.pos_weight, self.head_weight = type_weight, pos_weight, head_weight
        self.t = n_traits

    def __call__(self, logits: torch.Tensor, y: torch.Tensor):
        # y (B, T [+ 1]): the 0/1 traits, then the head's index when the model has heads.
        n, t = len(TYPES), self.t
        kind = y[:, :n].argmax(1)
        types = F.cross_entropy(logits[:, :n], kind, weight=self.type_weight, reduction="none")
        acc = F.binary_cross_entropy_with_logits(
            logits[:, n:t], y[:, n:t].float(), pos_weight=self.pos_weight, reduction="none"
        ).mean(1)
        # The weighted means F.cross_entropy would give; acc is a mean over 87 columns: weight
        # it up against the types. `last`: each punk's own loss, for replaying the hardest.
        w = self.type_weight[kind] if self.type_weight is not None else torch.ones_like(types)
        loss = types.sum() / w.sum() + 4 * acc.mean()
        self.last = (types + 4 * acc).detach()
        if self.head_weight is not None:
            head = y[:, t].long()
            heads = F.cross_entropy(logits[:, t:], head, weight=self.head_weight, reduction="none")
            loss = loss + heads.sum() / self.head_weight[head].sum()
            self.last += heads.detach()
        return loss, loss.detach(), exact_match(logits[:, :t].detach(), y[:, :t])


class EarlyStopping:
    """Per-epoch validation macro F1; keeps the best weights, stops after PATIENCE epochs without
    a better one or at a perfect score. Also records the training curves (monitoring only: the
    test split is never used to select)."""

    def __init__(self, model, loss_fn, idx, target, y, val_ids, test_ids, steps, sched, bar,
                 stop_perfect: bool = True):  # fmt: skip
        self.model, self.loss_fn, self.idx, self.target, self.y = model, loss_fn, idx, target, y
        self.val_ids, self.test_ids, self.steps, self.sched, self.bar = (
            val_ids, test_ids, steps, sched, bar)  # fmt: skip
        self.stop_perfect = stop_perfect
        self.history: list[dict] = []
        self.losses: list[float] = []  # per step, for the report's training curves
        self.accuracies: list[float] = []
        self.best_score, self.best_epoch, self.best_state = -1.0, -1, None
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()

    def on_step(self, s: Step) -> None:
        self.sched.step()
        self.losses.append(round(float(s.loss), 5))
        self.accuracies.append(round(float(s.correct), 4))
        self.bar.update(1)

    @torch.inference_mode()
    def on_epoch(self, epoch: int) -> bool:
        model = self.model
        model.eval()
        out = model.probabilities(model(self.idx[self.val_ids])).cpu().numpy()
        _, test_loss, test_acc = self.loss_fn(model(self.idx[self.test_ids]), self.y[self.test_ids])
        model.train()
        t = model.n_traits
        f1 = f1_scores(self.target[self.val_ids], decide(out[:, :t]))
        if model.n_heads:  # the head (type and skin tone) is one more score, its accuracy
            right = out[:, t:].argmax(1) == self.y[self.val_ids, t].cpu().numpy()
            f1 = np.append(f1, right.mean())
        score = float(f1.mean())
        self.history.append({
            "epoch": epoch + 1, "seconds": round(time.perf_counter() - self.t0, 2),
            "train_loss": round(float(np.mean(self.losses[-self.steps:])), 5),
            "val_macro_f1": round(score, 5), "val_min_f1": round(float(f1.min()), 5),
            "val_traits_below_1": int((f1 < 1).sum()),
            "test_loss": round(float(test_loss), 5), "test_accuracy": round(float(test_acc), 4),
        })  # fmt: skip
        self.bar.set_postfix_str(
            f"ep {epoch + 1} val F1 {score:.4f} ({int((f1 < 1).sum())} below 1)"
        )
        # Without the perfect stop, a tie moves the best forward: later weights are more annealed.
        if score > self.best_score or (not self.stop_perfect and score == self.best_score):
            self.best_score, self.best_epoch = score, epoch
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return (self.stop_perfect and score >= 1.0) or epoch - self.best_epoch >= PATIENCE


def pick_drawn(hardness: torch.Tensor, n: int, n_hard: int, gen: torch.Generator) -> torch.Tensor:
    """The drawn punks an epoch trains on, `n` different ones: the `n_hard` whose loss was highest
    when last trained on (`hardness`; inf: never trained on yet), then others at random."""
    if not n_hard:
        return torch.randperm(len(hardness), generator=gen)[:n].to(hardness.device)
    hard = torch.where(hardness.isinf(), -1.0, hardness).topk(n_hard).indices
    rest = torch.ones(len(hardness), dtype=torch.bool, device=hardness.device)
    rest[hard] = False
    order = torch.randperm(len(hardness), generator=gen).to(hardness.device)
    return torch.cat([hard, order[rest[order]][: n - n_hard]])


@dataclass
class Drawn:
    """New punks drawn with the sprites learned from the training split (sprites.py)."""

    images: np.ndarray  # (n, 24, 24, 4) uint8
    labels: np.ndarray  # (n, T) 0/1: the type and the *visible* accessories
    heads: np.ndarray  # (n,) index into HEADS
    report: dict  # what config.json records about them


def draw_punks(punks: Punks, train_ids: np.ndarray, test_ids: np.ndarray, n: int,
               seed: int, temper: float = 1.0, any_pair: bool = False,
               head_temper: float = 1.0, assume_clear: bool = False) -> Drawn:  # fmt: skip
    """`n` punks of new combinations (none is a training punk's), drawn with sprites learned from
    `train_ids` only; any that equals the image of a test punk is dropped (checked by hash)."""
    from ..sprites import sprites_for

    sprites = sprites_for(punks, train_ids)
    combos = sprites.sample(n, np.random.default_rng([seed, 8]), temper=temper, any_pair=any_pair,
                            head_temper=head_temper, assume_clear=assume_clear)  # fmt: skip
    # (n, 24, 24, 4); sample() keeps fully known ones
    images, _ = sprites.render_many(combos, assume_clear)
    labels = np.zeros((n, len(punks.traits)), np.uint8)
    kinds = [punks.traits.index(head.split()[0]) for head, _ in combos]
    labels[np.arange(n), kinds] = 1
    for i, shown in enumerate(sprites.visible(combos, images, assume_clear)):
        labels[i, [punks.traits.index(a) for a in shown]] = 1
    outside = {img.tobytes() for img in punks.images[test_ids]}
    keep = np.array([img.tobytes() not in outside for img in images], bool)
    report = {
        "n": int(keep.sum()), "seed": seed, "sprites_learned_from": "the training split",
        "temper": temper, "head_temper": head_temper, "assume_clear": assume_clear,
        "pairs": "any one per slot" if any_pair else "seen in training",
        "new_combinations": "none is the label set of a training punk",
        "equal_to_a_test_punk": int((~keep).sum()),
        "checked": f"RGBA bytes of every drawn punk against the {len(test_ids):,} test punks: "
                   f"{int((~keep).sum())} equal (dropped)",
    }  # fmt: skip
    heads = np.array([HEADS.index(h) for h, _ in combos])
    return Drawn(images[keep], labels[keep], heads[keep], report)


class Ours(Recipe):
    name = "ours"
    knobs = KNOBS
    help = "one colour CNN for all 92 traits and the head, on real and drawn punks"

    def __init__(self):
        self._drawn: dict[tuple, Drawn] = {}  # drawing is done once per run, in describe()

    def epochs(self, cfg: TrainConfig) -> int:
        return 2 if cfg.dry_run else cfg.resolved_epochs()

    @staticmethod
    def _parts(punks: Punks, cfg: TrainConfig, s: Split):
        # Validation: 10% of the training split, stratified the same way, seeded by `seed`.
        fit_pos, val_pos = split(punks.labels[s.train], n_test=len(s.train) // 10, seed=cfg.seed)
        fit_ids, val_ids = s.train[fit_pos], s.train[val_pos]
        palette = palette_of(torch.from_numpy(punks.images[fit_ids]))  # colours of training only
        return fit_ids, val_ids, palette

    @staticmethod
    def share(cfg: TrainConfig) -> float:
        return DRAWN_SHARE if cfg.drawn_share is None else cfg.drawn_share

    def drawn(self, punks: Punks, cfg: TrainConfig, s: Split) -> Drawn | None:
        n = cfg.drawn if cfg.drawn is not None else (DRAWN if punks.layers is not None else 0)
        if cfg.dry_run:
            n = min(n, 500)
        if n == 0:
            return None
        if punks.layers is None:
            raise PunktraitsError("--drawn needs the collection's draw order (traits.csv)")
        key = (punks.sha256.get("punks.png"), s.train.tobytes(), n, cfg.seed)
        temper, any_pair = float(settings(cfg)["temper"]), bool(settings(cfg)["any_pair"])
        head_temper = float(settings(cfg)["head_temper"])
        assume_clear = bool(settings(cfg)["assume_clear"])
        key += (temper, any_pair, head_temper, assume_clear)
        if key not in self._drawn:
            self._drawn = {key: draw_punks(punks, s.train, s.test, n, cfg.seed, temper, any_pair,
                                           head_temper, assume_clear)}  # fmt: skip
        return self._drawn[key]

    def describe(self, punks: Punks, cfg: TrainConfig, split: Split) -> dict:
        _, val_ids, palette = self._parts(punks, cfg, split)
        heads = len(HEADS) if punks.layers is not None else 0  # the real collection: skins known
        unknown = set(cfg.extra) - set(KNOBS)
        if unknown:
            raise PunktraitsError(f"unknown setting(s) for --recipe ours: {sorted(unknown)}; "
                                  f"known: {sorted(KNOBS)}")  # fmt: skip
        size = {k: int(settings(cfg)[k]) for k in ("embed", "width", "hidden")}
        model = PunkNet(len(palette), len(punks.traits), n_heads=heads, **size)
        drawn = self.drawn(punks, cfg, split)
        return {
            "model": {"name": "PunkNet", **model.config()},
            "traits": list(punks.traits),
            "heads": list(HEADS) if heads else [],
            "input": "rgba",
            "target": "visible" if punks.visible is not None else "official",
            "batch_size": cfg.batch_size or BATCH,
            "optimiser": {
                "name": "AdamW",
                "lr": float(settings(cfg)["lr"]),
                "weight_decay": 0.05,
                "schedule": "onecycle",
            },  # fmt: skip
            "validation_ids": val_ids.tolist(),
            "settings": settings(cfg),
            "drawn": None if drawn is None else {**drawn.report, "share": self.share(cfg)},
        }

    def train(self, punks: Punks, cfg: TrainConfig, run: Path, config: dict, split: Split,
              progress: bool = True) -> None:  # fmt: skip
        dev = device(cfg.device)
        seed_everything(cfg.seed)
        # Late in training, tiny gradients become denormal floats, which x86 CPUs compute ~50x
        # slower (epochs went from 2 s to 120 s); flushing them to zero changes nothing visible.
        torch.set_flush_denormal(True)
        epochs, batch, lr = config["epochs"], config["batch_size"], config["optimiser"]["lr"]
        fit_ids, val_ids, palette = self._parts(punks, cfg, split)
        # Hidden labels have no pixel: learning them would teach the net to guess, so the
        # targets are the visible labels when hidden.csv is known.
        target = punks.visible if punks.visible is not None else punks.labels
        images, heads = punks.images, punks.heads if config["heads"] else None
        drawn = self.drawn(punks, cfg, split)
        n_real, n_drawn = len(images), 0
        if drawn is not None:  # drawn punks get the ids after the collection's
            images = np.concatenate([images, drawn.images])
            target = np.concatenate([target, drawn.labels])
            heads = np.concatenate([heads, drawn.heads])
            n_drawn = len(drawn.images)
        spec = {k: v for k, v in config["model"].items() if k != "name"}
        model = PunkNet(**spec)
        model.palette.copy_(palette)
        model.to(dev)

        idx_all = torch.cat(
            [
                model.colour_index(rgba(images[i : i + 4096]).to(dev))
                for i in range(0, len(images), 4096)
            ]
        )  # (N, 24, 24), once
        y = target if heads is None else np.concatenate([target, heads[:, None]], 1)
        y_all = torch.from_numpy(y.astype(np.int64)).to(dev)  # (N, T [+ 1])
        t = len(punks.traits)
        counts = y_all[fit_ids, :t].sum(0).float()
        pos_weight = ((len(fit_ids) - counts) / counts.clamp(min=1)).sqrt()[len(TYPES) :]
        type_weight = (counts.max() / counts.clamp(min=1)).sqrt()[: len(TYPES)]
        head_weight = None
        if heads is not None:
            hc = torch.bincount(y_all[fit_ids, t], minlength=len(HEADS)).float()
            head_weight = (hc.max() / hc.clamp(min=1)).sqrt()
        # Each epoch: the real training punks and, making up `share` of it, drawn ones.
        # The last `val_drawn` drawn punks are held out: they validate, never train.
        n_val = min(int(settings(cfg)["val_drawn"]), n_drawn // 2)
        check_ids = np.concatenate([val_ids, np.arange(n_real + n_drawn - n_val, n_real + n_drawn)])
        n_drawn -= n_val
        share = self.share(cfg) if n_drawn else 0.0
        per_epoch = min(n_drawn, round(len(fit_ids) * share / max(1e-9, 1 - share)))
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
        steps = (len(fit_ids) + per_epoch + batch - 1) // batch
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.15
        )
        fit_t = torch.from_numpy(fit_ids).to(dev)
        drawn_t = torch.arange(n_real, n_real + n_drawn, device=dev)
        gen = torch.Generator().manual_seed(cfg.seed)
        loss_fn = StructuredLoss(type_weight, pos_weight, t, head_weight)

        # Each drawn punk's loss when it was last trained on (inf: not yet), for `replay`.
        replay = float(settings(cfg)["replay"])
        hardness = torch.full((n_drawn,), float("inf"), device=dev)

        def batches(epoch: int):
            ids = fit_t
            if per_epoch:
                n_hard = round(per_epoch * replay) if epoch else 0
                pick = pick_drawn(hardness, per_epoch, n_hard, gen)
                ids = torch.cat([fit_t, drawn_t[pick]])
            perm = ids[torch.randperm(len(ids), generator=gen).to(dev)]
            for s in range(steps):
                b = perm[s * batch : (s + 1) * batch]
                yield idx_all[b], y_all[b]
                if replay:  # the step on this batch is done: keep its drawn punks' losses
                    d = b >= n_real
                    hardness[b[d] - n_real] = loss_fn.last[d]

        bar = tqdm(total=epochs * steps, desc="ours", unit="step", disable=not progress)
        stop_perfect = bool(settings(cfg)["stop_perfect"])
        monitor = EarlyStopping(model, loss_fn, idx_all, target, y_all, check_ids, split.test,
                                steps, sched, bar, stop_perfect)  # fmt: skip
        fit(model, batches, loss_fn, opt, epochs, monitor.on_step, monitor.on_epoch)
        bar.close()
        model.load_state_dict(monitor.best_state)
        write_json(run / "history.json", {
            "epochs": monitor.history, "best_epoch": monitor.best_epoch + 1,
            "train_seconds": round(time.perf_counter() - monitor.t0, 2), "steps_per_epoch": steps,
            # CPU time of the whole process (all torch threads): on a shared machine, the share
            # of the cores this run got is what wall time cannot tell.
            "train_cpu_seconds": round(time.process_time() - monitor.cpu0, 2),
            "steps": {"loss": monitor.losses, "accuracy": monitor.accuracies},  # visible labels
        })  # fmt: skip
        save_weights(run / "model.safetensors", model.cpu().state_dict())

    def load(self, run: Path, config: dict) -> PunkNet:
        spec = {k: v for k, v in config["model"].items() if k != "name"}
        model = PunkNet(**spec)
        load_state(model, load_weights(run / "model.safetensors"), run)
        return model.eval()

    def predict(self, model: PunkNet, images: np.ndarray):
        out = predict(model, images)
        t = model.n_traits
        return out[:, :t], (out[:, t:] if model.n_heads else None)

    def probabilities(self, model: PunkNet, images: np.ndarray) -> np.ndarray:
        return self.predict(model, images)[0]

    def decide(self, prob: np.ndarray) -> np.ndarray:
        return decide(prob)

    @torch.inference_mode()
    def scores(self, model: PunkNet, images: np.ndarray, traits: list[str],
               config: dict) -> np.ndarray:  # fmt: skip
        model.eval()
        cols = [config["traits"].index(t) for t in traits]
        return model(rgba(images)).numpy()[:, cols]  # logits

    def history(self, run: Path, config: dict) -> dict:
        return read_json(run / "history.json")

    def train_seconds(self, history: dict) -> float:
        return history["train_seconds"]

    def curves(self, history: dict, config: dict) -> dict:
        epochs = history["epochs"]
        if history.get("steps"):
            loss, acc = history["steps"]["loss"], history["steps"]["accuracy"]
            per_epoch = history["steps_per_epoch"]
        else:  # runs recorded before per-step curves: epoch means only
            loss = [e["train_loss"] for e in epochs]
            acc, per_epoch = [float("nan")] * len(epochs), 1
        return {
            "loss": loss, "accuracy": acc, "steps_per_epoch": per_epoch,
            "test_loss": [e.get("test_loss") for e in epochs],
            "test_accuracy": [e.get("test_accuracy") for e in epochs],
            "what": "accuracy = exact match (all 92 traits right, visible labels)",
            "note": f"best epoch {history['best_epoch']} (validation), weights restored from it",
            "best_epoch": history["best_epoch"], "per_trait": None,
        }  # fmt: skip

    def export_onnx(self, model: PunkNet, path: Path) -> None:
        """Input `rgba` (N, 4, 24, 24) float in [0, 1], outputs `probabilities` (N, T) and, when
        the model has head outputs, `heads` (N, H)."""

        class WithProbabilities(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                p = self.net.probabilities(self.net(x))
                t = self.net.n_traits
                return (p[:, :t], p[:, t:]) if self.net.n_heads else p

        try:
            import onnx  # noqa: F401  (torch's exporter needs it)
        except ImportError:
            raise PunktraitsError(
                "ONNX export needs the onnx package: pip install 'punktraits[onnx]'"
            ) from None
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.onnx.export(
            WithProbabilities(model).eval(), (torch.zeros(1, 4, 24, 24),), str(tmp),
            input_names=["rgba"], output_names=["probabilities", "heads"][: 1 + bool(model.n_heads)],
            dynamic_axes={"rgba": {0: "n"}, "probabilities": {0: "n"}, "heads": {0: "n"}},
            dynamo=False,
        )  # fmt: skip
        atomic_write(path, tmp.read_bytes())
        tmp.unlink()
