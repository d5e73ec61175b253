"""Per-trait metrics on a test set, the paper's way and the honest way.

Precision when a model never says "yes" is 0/0. The paper computed it with scikit-learn's
`zero_division=1`, so such a net scored precision 1.0: that number is `precision_paper`.
`precision` uses `zero_division=0`. F1 and recall use 0 for 0/0 as well.
"""

from __future__ import annotations

import csv
import io

import numpy as np

COLUMNS = (
    "trait", "support", "tp", "fp", "fn", "tn", "accuracy", "precision", "precision_paper",
    "recall", "f1", "f1_visible", "f1_ceiling",
)  # fmt: skip


def _ratio(a: np.ndarray, b: np.ndarray, zero: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.maximum(b, 1), zero)


def f1_scores(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-column F1 of 0/1 arrays (N, T); 0 where a trait has no positive and no prediction."""
    truth, pred = truth.astype(bool), pred.astype(bool)
    tp = (truth & pred).sum(0)
    return _ratio(2 * tp, truth.sum(0) + pred.sum(0), 0.0)


def evaluate(
    traits: tuple[str, ...] | list[str],
    labels: np.ndarray,
    pred: np.ndarray,
    hidden: np.ndarray | None = None,
) -> dict:
    """Metrics of 0/1 predictions `pred` (N, T) against official `labels` (N, T).

    With the hidden mask, also `f1_visible` (truth = labels minus hidden: predicting a hidden label
    is a false positive) and `f1_ceiling` = 2V / (2V + H), the best official-label F1 a pixel-only
    model can reach on these punks.
    """
    truth, pred = labels.astype(bool), pred.astype(bool)
    tp = (truth & pred).sum(0)
    fp = (~truth & pred).sum(0)
    fn = (truth & ~pred).sum(0)
    tn = (~truth & ~pred).sum(0)
    n = len(truth)
    out = {
        "n_test": n,
        "accuracy": (tp + tn) / n,
        "precision": _ratio(tp, tp + fp, 0.0),
        "precision_paper": _ratio(tp, tp + fp, 1.0),
        "recall": _ratio(tp, tp + fn, 0.0),
        "f1": f1_scores(truth, pred),
    }
    per_trait = {}
    if hidden is not None:
        visible = truth & ~hidden
        out["f1_visible"] = f1_scores(visible, pred)
        v, h = visible.sum(0), (truth & hidden).sum(0)
        out["f1_ceiling"] = _ratio(2 * v, 2 * v + h, 1.0)
    for j, name in enumerate(traits):
        row = {"support": int(truth[:, j].sum()), "tp": int(tp[j]), "fp": int(fp[j]),
               "fn": int(fn[j]), "tn": int(tn[j])}  # fmt: skip
        for key in ("accuracy", "precision", "precision_paper", "recall", "f1", "f1_visible",
                    "f1_ceiling"):  # fmt: skip
            if key in out:
                row[key] = float(out[key][j])
        per_trait[name] = row
    summary = {
        "n_test": n,
        "macro_f1": float(out["f1"].mean()),
        "exact_match": float((truth == pred).all(1).mean()),
        "macro_f1_visible": None,
        "macro_f1_ceiling": None,
        "exact_match_visible": None,
    }
    if hidden is not None:
        summary["macro_f1_visible"] = float(out["f1_visible"].mean())
        summary["macro_f1_ceiling"] = float(out["f1_ceiling"].mean())
        summary["exact_match_visible"] = float(((truth & ~hidden) == pred).all(1).mean())
    summary["per_trait"] = per_trait
    return summary


def shares(metrics: dict) -> dict:
    """The paper's Fig. 15 statements: share of traits with each metric >= 0.8 and = 1."""
    rows = metrics["per_trait"].values()
    out = {}
    for key in ("accuracy", "precision_paper", "precision", "recall", "f1"):
        vals = np.array([r[key] for r in rows])
        out[key] = {"ge_0.8": float((vals >= 0.8).mean()), "eq_1": float((vals >= 1.0).mean())}
    return out


def to_csv(metrics: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for name, r in metrics["per_trait"].items():
        w.writerow([name] + [_fmt(r.get(c)) for c in COLUMNS[1:]])
    return buf.getvalue()


def _fmt(v) -> str:
    if v is None:
        return ""
    return str(v) if isinstance(v, int) else f"{v:.6f}"


def table(metrics: dict, columns=("support", "tp", "fp", "fn", "accuracy", "precision",
                                  "precision_paper", "recall", "f1", "f1_visible")) -> str:  # fmt: skip
    """The per-trait metrics as a fixed-width text table."""
    cols = [c for c in columns if any(c in r for r in metrics["per_trait"].values())]
    head = f"{'trait':<20}" + "".join(
        f"{c.replace('precision_paper', 'prec_paper'):>11}" for c in cols
    )
    lines = [head, "-" * len(head)]
    for name, r in metrics["per_trait"].items():
        cells = "".join(
            f"{r[c]:>11}" if isinstance(r.get(c), int) else f"{r.get(c, float('nan')):>11.3f}"
            for c in cols
        )
        lines.append(f"{name:<20}{cells}")
    return "\n".join(lines)


def best_worst(metrics: dict, n: int = 3) -> tuple[list, list]:
    """The n worst and n best traits by F1 (ties broken by support, then name)."""
    items = sorted(
        metrics["per_trait"].items(), key=lambda kv: (kv[1]["f1"], kv[1]["support"], kv[0])
    )
    return items[:n], items[::-1][:n]


def compare(a: dict, b: dict, names: tuple[str, str] = ("A", "B")) -> tuple[str, str]:
    """Per-trait F1 of two runs side by side and their aggregates: (text table, CSV)."""
    traits = [t for t in a["per_trait"] if t in b["per_trait"]]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trait", "support", f"f1_{names[0]}", f"f1_{names[1]}", "delta",
                f"f1_visible_{names[0]}", f"f1_visible_{names[1]}"])  # fmt: skip
    head = f"{'trait':<20}{'support':>8}{'F1 ' + names[0]:>12}{'F1 ' + names[1]:>12}{'delta':>9}"
    lines = [head, "-" * len(head)]
    for t in traits:
        ra, rb = a["per_trait"][t], b["per_trait"][t]
        d = rb["f1"] - ra["f1"]
        w.writerow([t, ra["support"], _fmt(ra["f1"]), _fmt(rb["f1"]), _fmt(d),
                    _fmt(ra.get("f1_visible")), _fmt(rb.get("f1_visible"))])  # fmt: skip
        lines.append(f"{t:<20}{ra['support']:>8}{ra['f1']:>12.3f}{rb['f1']:>12.3f}{d:>+9.3f}")
    lines.append("-" * len(head))
    for key in ("macro_f1", "macro_f1_visible", "exact_match", "exact_match_visible",
                "train_seconds"):  # fmt: skip
        va, vb = a.get(key), b.get(key)
        if va is None or vb is None:
            continue
        w.writerow([key, "", _fmt(float(va)), _fmt(float(vb)), _fmt(float(vb) - float(va)), "", ""])
        lines.append(f"{key:<28}{va:>12.4f}{vb:>12.4f}{vb - va:>+9.4f}")
    return "\n".join(lines), buf.getvalue()
