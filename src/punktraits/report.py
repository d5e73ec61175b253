"""The report: every table and figure of the paper, regenerated for any run folder.

    punktraits report runs/ours-seed0 [--compare runs/paper-seed0]

writes `run/report.html` (one self-contained file: figures and punks embedded as data URIs, no
request leaves the page) and the figures as PNG in `run/report-figures/`. The paper's parts:

    Tables I-II     the 3 worst and 3 best traits by F1, with example test punks (Figs. 6-10)
    Figs. 11-12     loss and accuracy per training step, and on the test split per epoch
    Figs. 13-14     the same per trait, for the paper recipe's one-net-per-trait runs
    Fig. 15         cumulative distributions of accuracy, precision, recall and F1 over the traits

and what the paper lacked: visible-label metrics and their ceiling, every misclassified test
punk, occlusion heatmaps (predict.py) for the worst traits, and the confusion matrix of types.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .data import TYPES, Punks
from .draw import punk_grid
from .errors import RunError
from .files import atomic_write, data_uri, png_bytes, punk_png, read_json, slug
from .metrics import COLUMNS, best_worst, shares
from .predict import Predictor
from .run import Run, TestScores
from .schema import read_metrics
from .version import __version__

FIGURES = "report-figures"  # folder beside report.html

# What the paper publishes about its 92 nets (Table I and the text on Fig. 15); marked on the
# Fig. 15 plots. The paper gives no other numbers for the distributions.
PAPER_WORST_F1 = {"Rosy Cheeks": 0.041, "Spots": 0.165, "Blue Eye Shadow": 0.179}
PAPER_PERFECT_SHARE = 0.5  # "about half of the models" reach F1 = 1


@dataclass
class RunView:
    """A finished run folder, its metrics and curves, and (for the main run) its test-split
    predictions."""

    run: Run
    metrics: dict
    curves: dict  # the recipe's training curves (recipes/base.py: Recipe.curves)
    predictor: Predictor | None  # for heatmaps (None: a compared run)
    scores: TestScores | None  # test-split predictions and labels (None: a compared run)

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def config(self) -> dict:
        return self.run.config

    @property
    def traits(self) -> list[str]:
        return self.run.traits

    @property
    def name(self) -> str:
        return f"{self.path.name} ({self.config['recipe']})"


def load_run(path: Path, punks: Punks, predict: bool = True) -> RunView:
    """Read a run folder; check that its metrics.json still matches its weights."""
    path = Path(path)
    metrics = read_metrics(path / "metrics.json")  # aggregates agree with the per-trait rows
    predictor = scores = None
    if predict:
        run = Run.open(path)
        predictor = Predictor(run)
        scores = run.score_test_split(punks)
        differ = [k for k, v in scores.metrics.items() if metrics.get(k) != v]
        if differ:
            raise RunError(
                f"{path}/metrics.json does not match the saved weights on this data "
                f"({', '.join(differ)}); run `punktraits evaluate {path}` first"
            )
    else:  # a compared run: its config, metrics and curves only
        run = Run(path, read_json(path / "config.json"))
        run.check_data(punks)
    curves = run.recipe.curves(run.history, run.config)
    return RunView(run, metrics, curves, predictor, scores)


# ---------------------------------------------------------------------------------------------
# Pictures


FRAME = {"found": "#2e9e44", "missed": "#d62728", "hidden": "#bbbbbb"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "font.size": 9, "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False})  # fmt: skip
    return plt


def fig_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


def _training_line(ax, values: np.ndarray, width: int, lw: float, label: str | None = None):
    """Per-step values, faint, and their running mean over `width` steps on top."""
    x = np.arange(1, len(values) + 1)
    ax.plot(x, values, color="#1f77b4", alpha=0.25, lw=0.7)
    if 2 <= width <= len(values):
        values = np.convolve(values, np.ones(width) / width, mode="valid")
    ax.plot(x[len(x) - len(values) :], values, color="#1f77b4", lw=lw, label=label)


def curves(view: RunView) -> tuple[bytes, str]:
    """Figs. 11-12: loss and accuracy per training step, and on the test split per epoch."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    c = view.curves
    loss, acc = np.array(c["loss"], float), np.array(c["accuracy"], float)
    test_loss, test_acc, per_epoch = c["test_loss"], c["test_accuracy"], c["steps_per_epoch"]
    what, note = c["what"], c["note"]
    width = max(1, len(loss) // 60)
    for ax, train, test, label in ((axes[0], loss, test_loss, "loss"),
                                   (axes[1], acc, test_acc, "accuracy")):  # fmt: skip
        if np.isfinite(train).any():
            _training_line(ax, train, width, 1.5, "training batches")
        ends = [(i + 1) * per_epoch for i in range(len(test))]
        pts = [(e, v) for e, v in zip(ends, test) if v is not None]
        if pts:
            ax.plot(*zip(*pts), "o-", color="#d62728", ms=4, lw=1.2, label="test split (per epoch)")
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        if label == "loss":
            ax.set_yscale("log")
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"{view.name}: training curves ({what})", fontsize=10)
    return fig_png(fig), note


def per_trait_curves(view: RunView, traits: list[str]) -> bytes:
    """Figs. 13-14 style: each paper net's own loss and accuracy, for the given traits."""
    plt = _plt()
    fig, axes = plt.subplots(2, len(traits), figsize=(2.6 * len(traits), 4.6), squeeze=False)
    for c, t in enumerate(traits):
        h = view.curves["per_trait"][t]
        n_ep = len(h["test_loss"])
        per_epoch = len(h["loss"]) // max(n_ep, 1)
        ends = [(i + 1) * per_epoch for i in range(n_ep)]
        for r, (key, label) in enumerate((("loss", "loss"), ("accuracy", "accuracy"))):
            ax = axes[r, c]
            v = np.array(h[key])
            _training_line(ax, v, max(1, len(v) // 40), 1.2)
            ax.plot(ends, h[f"test_{key}"], "o-", color="#d62728", ms=3, lw=1)
            if r == 0:
                ax.set_title(f"{t}\nF1 {view.metrics['per_trait'][t]['f1']:.3f}", fontsize=9)
            if c == 0:
                ax.set_ylabel(label)
            if r == 1:
                ax.set_xlabel("step")
    fig.suptitle("per-trait curves (blue: training batches, red: test split per epoch)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    return fig_png(fig)


CDF_KEYS = (("accuracy", "accuracy"), ("precision", "precision"),
            ("recall", "recall"), ("f1", "F1"))  # fmt: skip


def cdfs(views: list[RunView]) -> bytes:
    """Fig. 15: the share of traits with a metric <= x, for each metric, each run."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), sharey=True)
    colours = ["#1f77b4", "#ff7f0e"]
    for ax, (key, label) in zip(axes, CDF_KEYS):
        for view, colour in zip(views, colours):
            v = np.sort([r[key] for r in view.metrics["per_trait"].values()])
            y = np.arange(1, len(v) + 1) / len(v)
            ax.step(np.concatenate([[0], v, [1.0]]), np.concatenate([[0], y, [1.0]]),
                    where="post", color=colour, lw=1.5, label=view.name)  # fmt: skip
        if key == "f1":
            # The paper: about half of its 92 nets are perfect, so about half lie below F1 = 1;
            # its three worst F1 are the first three steps of its curve.
            ax.plot([1.0], [1 - PAPER_PERFECT_SHARE], "kD", ms=6,
                    label="paper: about half perfect")  # fmt: skip
            worst = sorted(PAPER_WORST_F1.values())
            ax.plot(worst, np.arange(1, 4) / 92, "kx", ms=7, label="paper: worst 3 F1")
        ax.set_xlabel(label)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("share of traits with metric ≤ x")
    axes[-1].legend(loc="upper left", fontsize=7)
    fig.suptitle("cumulative distributions over the traits (paper Fig. 15)", fontsize=10)
    fig.tight_layout()
    return fig_png(fig)


def type_confusion(view: RunView) -> np.ndarray | None:
    """5x5 counts, rows = true type, columns = predicted (argmax of the type scores)."""
    sc = view.scores
    if not all(t in view.traits for t in TYPES):
        return None
    cols = [view.traits.index(t) for t in TYPES]
    true = sc.truth[:, cols].argmax(1)
    pred = sc.prob[:, cols].argmax(1)
    m = np.zeros((len(TYPES), len(TYPES)), np.int64)
    np.add.at(m, (true, pred), 1)
    return m


def confusion_png(m: np.ndarray) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.4, 3.8))
    ax.imshow(np.log1p(m), cmap="Blues")
    ax.grid(False)
    for (r, c), v in np.ndenumerate(m):
        ax.text(c, r, f"{v:,}", ha="center", va="center",
                color="white" if v > m.max() / 3 else "black", fontsize=9)  # fmt: skip
    ax.set_xticks(range(len(TYPES)), TYPES)
    ax.set_yticks(range(len(TYPES)), TYPES)
    ax.set_xlabel("predicted type")
    ax.set_ylabel("true type")
    return fig_png(fig)


# ---------------------------------------------------------------------------------------------
# The report


def _examples(view: RunView, punks: Punks, trait: str, limit: int = 24) -> dict:
    """Test punks with the trait (Figs. 6-10), missed ones first, then hidden labels, then found."""
    sc = view.scores
    j = view.traits.index(trait)
    has = np.flatnonzero(sc.truth[:, j])
    hid = sc.hidden[:, j] if sc.hidden is not None else np.zeros(len(sc.truth), bool)
    kind = np.array(["hidden" if hid[i] else ("found" if sc.pred[i, j] else "missed") for i in has])
    order = np.argsort([{"missed": 0, "hidden": 1, "found": 2}[k] for k in kind], kind="stable")
    pick = has[order][:limit]
    frames = [FRAME[k] for k in kind[order][:limit]]
    grid = punk_grid(punks.images[sc.test[pick]], frames) if len(pick) else None
    return {
        "trait": trait,
        "row": view.metrics["per_trait"][trait],
        "png": png_bytes(grid) if grid else None,
        "shown": len(pick),
        "total": len(has),
        "missed": int((kind == "missed").sum()),
        "hidden": int((kind == "hidden").sum()),
        "false": int(((sc.truth[:, j] == 0) & (sc.pred[:, j] == 1)).sum()),
    }


def _heatmaps(view: RunView, punks: Punks, trait: str, limit: int = 4) -> list[dict]:
    """Occlusion heatmaps of `trait` on test punks: its errors first, then correct positives."""
    from .predict import render_explanation

    sc = view.scores
    j = view.traits.index(trait)
    t, p = sc.truth[:, j].astype(bool), sc.pred[:, j].astype(bool)
    if sc.hidden is not None:
        t &= ~sc.hidden[:, j]  # a hidden label has no pixel to point at
    order = np.concatenate([np.flatnonzero(t & ~p), np.flatnonzero(~t & p), np.flatnonzero(t & p)])
    out = []
    for i in order[:limit]:
        punk = punks.images[sc.test[i]]
        heat = view.predictor.occlusion(punk, [trait])
        probs = {trait: float(sc.prob[i, j])}
        picture = render_explanation(punk, heat, probs, zoom=6)
        what = (
            "missed" if t[i] and not p[i] else ("false positive" if p[i] and not t[i] else "found")
        )
        out.append({"id": int(sc.test[i]), "what": what, "png": png_bytes(picture)})
    return out


def _misclassified(view: RunView, punks: Punks) -> list[dict]:
    """Every test punk whose predicted traits differ from its official labels."""
    sc = view.scores
    rows = []
    hidden = sc.hidden if sc.hidden is not None else np.zeros(sc.truth.shape, bool)
    wrong = np.flatnonzero((sc.truth != sc.pred).any(1))
    for i in wrong:
        tr, pr, hd = sc.truth[i].astype(bool), sc.pred[i].astype(bool), hidden[i]
        rows.append({
            "id": int(sc.test[i]),
            "uri": data_uri(punk_png(punks.images[sc.test[i]])),
            "truth": [view.traits[j] for j in np.flatnonzero(tr)],
            "missed": [view.traits[j] for j in np.flatnonzero(tr & ~pr & ~hd)],
            "hidden": [view.traits[j] for j in np.flatnonzero(tr & ~pr & hd)],
            "false": [view.traits[j] for j in np.flatnonzero(~tr & pr)],
            "only_hidden": bool(not (~tr & pr).any() and not (tr & ~pr & ~hd).any()),
        })  # fmt: skip
    return rows


def _summary(view: RunView) -> dict:
    m, c = view.metrics, view.config
    best = view.curves["best_epoch"]
    return {
        "run": str(view.path),
        "recipe": c["recipe"],
        "model": c["model"]["name"]
        + (f" ({c['model']['variant']})" if "variant" in c["model"] else ""),
        "traits": len(c["traits"]),
        "punks.png sha256": c.get("data_sha256", {}).get("punks.png", "?"),
        "seed / split seed": f"{c['seed']} / {c.get('split_seed', 0)}",
        "epochs": f"{c['epochs']}" + (f" (best {best}, early stopping)" if best else ""),
        "device": f"{c['device']}" + (f", {c['threads']} threads" if c.get("threads") else ""),
        "training time": f"{m['train_seconds']:,.1f} s",
        "test punks": f"{m['n_test']:,}",
        "macro F1 (official labels)": f"{m['macro_f1']:.4f}",
        "macro F1 (visible labels)": _num(m.get("macro_f1_visible"), "{:.4f}"),
        "macro F1 ceiling (official)": _num(m.get("macro_f1_ceiling"), "{:.4f}"),
        "exact match (official)": f"{m['exact_match']:.2%}",
        "exact match (visible)": _num(m.get("exact_match_visible"), "{:.2%}"),
        "package": c.get("version", "?"),
    }


def _num(v, fmt: str) -> str:
    return "n/a (no hidden.csv)" if v is None else fmt.format(v)


def build(
    run: str | os.PathLike,
    punks: Punks,
    compare: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Write run/report.html and run/report-figures/*.png; return the HTML's path."""
    run = Path(run)
    steps = ["read runs", "figures", "examples", "heatmaps", "misclassified", "write"]
    bar = tqdm(steps, desc="report", unit="part", disable=not progress)
    try:
        return _build(run, punks, compare, bar, steps)
    finally:
        bar.close()


def _build(run: Path, punks: Punks, compare, bar, steps: list[str]) -> Path:
    import jinja2

    bar.set_postfix_str(steps[0])
    view = load_run(run, punks)
    other = load_run(Path(compare), punks, predict=False) if compare else None
    bar.update(1)

    bar.set_postfix_str(steps[1])
    figs: dict[str, bytes] = {}
    notes: dict[str, str] = {}
    figs["curves"], notes["curves"] = curves(view)
    worst, best = best_worst(view.metrics)
    if view.curves["per_trait"]:
        figs["per_trait_curves"] = per_trait_curves(view, [t for t, _ in worst + best])
    figs["cdf"] = cdfs([view] + ([other] if other else []))
    confusion = type_confusion(view)
    if confusion is not None:
        figs["types"] = confusion_png(confusion)
    bar.update(1)

    bar.set_postfix_str(steps[2])
    tables = {
        "worst": [_examples(view, punks, t) for t, _ in worst],
        "best": [_examples(view, punks, t) for t, _ in best],
    }
    for name, rows in tables.items():
        for k, ex in enumerate(rows):
            if ex["png"]:
                figs[f"{name}-{k + 1}-{slug(ex['trait'])}"] = ex["png"]
    bar.update(1)

    bar.set_postfix_str(steps[3])
    heat = {t: _heatmaps(view, punks, t) for t, _ in worst}
    bar.update(1)
    bar.set_postfix_str(steps[4])
    wrong = _misclassified(view, punks)
    bar.update(1)

    bar.set_postfix_str(steps[5])
    fig_dir = run / FIGURES
    for name, png in figs.items():
        atomic_write(fig_dir / f"{name}.png", png)
    rows = []
    for t, r in view.metrics["per_trait"].items():
        row = {"trait": t, "type": t in TYPES, "f1": r["f1"], "cells": []}
        for col in COLUMNS[1:]:
            row["cells"].append({"col": col, "value": r.get(col)})
        if other is not None:
            rb = other.metrics["per_trait"].get(t)
            row["other_f1"] = None if rb is None else rb["f1"]
        rows.append(row)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("punktraits", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["uri"] = data_uri
    env.filters["cell"] = _cell
    html = env.get_template("report.html.j2").render(
        view=view, other=other, version=__version__,
        summary=_summary(view), summary_other=_summary(other) if other else None,
        columns=COLUMNS[1:], rows=rows, tables=tables, figs=figs, notes=notes, heat=heat,
        wrong=wrong, n_only_hidden=sum(w["only_hidden"] for w in wrong),
        confusion=confusion, types=TYPES, shares=shares(view.metrics),
        shares_other=shares(other.metrics) if other else None,
        paper_worst=PAPER_WORST_F1, figures_dir=FIGURES,
    )  # fmt: skip
    out = run / "report.html"
    atomic_write(out, html.encode("utf-8"))
    bar.update(1)
    return out


def _cell(v) -> str:
    if v is None:
        return "–"
    return f"{v:,}" if isinstance(v, int) else f"{v:.3f}"
