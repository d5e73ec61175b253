"""Run folders: self-describing, resumable, evaluable without the training process.

    run/
      config.json        recipe, model arguments, trait names in output order, data sha256,
                         split seed, package version, device, threads, training settings
      split.json         {"train": [ids], "test": [ids]}
      model.safetensors  recipe "ours": the weights;  history.json: per-epoch validation and
                         test (monitoring) scores, per-step training loss and exact match
      nets/NN-name.safetensors + NN-name.json
                         recipe "paper": one net per trait (its weights, then its per-step
                         history); a net whose files exist is finished, so a run can resume
      metrics.json, metrics.csv   test-split metrics (see metrics.py)

Every file is written to a temporary name and renamed, so an interrupted run leaves no half file.
Weights are safetensors and everything else JSON: loading never unpickles anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .data import DataError, Punks, PunktraitsError, atomic_write
from .metrics import evaluate, to_csv
from .models import PaperNets, PunkNet

# The default model shipped with the package: the run folder of `punktraits train --seed 0
# --threads 2` (docs/RESULTS.md), without its metrics.csv.
DEFAULT_MODEL = Path(__file__).parent / "weights"

# Settings that may differ when a run is resumed (they do not change the result).
RESUMABLE = {"device", "threads", "train_config", "group"}


class RunError(PunktraitsError):
    """A run folder is missing, incomplete or was changed."""


def write_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=1) + "\n").encode())


def read_json(path: Path):
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path} is missing; is {path.parent} a punktraits run folder?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is not valid JSON ({e.msg if hasattr(e, 'msg') else e})") from None


def save_weights(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    tmp.replace(path)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise RunError(f"{path} is missing; the run did not finish or the folder was changed")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise RunError(f"{path} is not a readable safetensors file ({e})") from None


def start(out: Path, config: dict, train_ids: np.ndarray, test_ids: np.ndarray) -> None:
    """Create the run folder, or check that an existing one was started with the same settings."""
    out.mkdir(parents=True, exist_ok=True)
    split = {"train": train_ids.tolist(), "test": test_ids.tolist()}
    if (out / "config.json").exists():
        old = read_json(out / "config.json")
        diff = sorted(
            k for k in set(old) | set(config) if k not in RESUMABLE and old.get(k) != config.get(k)
        )
        if diff:
            raise RunError(
                f"{out} holds a run with other settings ({', '.join(diff)}); "
                "pass another --out, or delete the folder to start over"
            )
        if read_json(out / "split.json") != split:
            raise RunError(f"{out}/split.json differs from this run's split; use another --out")
    write_json(out / "config.json", config)
    write_json(out / "split.json", split)


def net_stem(index: int, trait: str) -> str:
    return f"{index:02d}-{re.sub(r'[^a-z0-9]+', '-', trait.lower()).strip('-')}"


def save_paper_net(out: Path, trait: str, net: PaperNets, history: dict) -> None:
    config = read_json(out / "config.json")
    stem = net_stem(config["traits"].index(trait), trait)
    (out / "nets").mkdir(exist_ok=True)
    write_json(out / "nets" / f"{stem}.json", {"trait": trait, **history})
    save_weights(out / "nets" / f"{stem}.safetensors", net.state_dict())  # last: marks it done


def finished_paper_nets(out: Path, traits: list[str]) -> set[str]:
    return {
        t
        for i, t in enumerate(traits)
        if (out / "nets" / f"{net_stem(i, t)}.safetensors").exists()
        and (out / "nets" / f"{net_stem(i, t)}.json").exists()
    }


def save_ours(out: Path, model: PunkNet, history: dict) -> None:
    write_json(out / "history.json", history)
    save_weights(out / "model.safetensors", model.state_dict())


def load_model(run: Path | None = None):
    """(model, config) of a finished run folder (default: the shipped model), on the CPU in eval
    mode."""
    run = DEFAULT_MODEL if run is None else Path(run)
    if not run.is_dir():
        raise RunError(f"{run} is not a folder; pass a run folder written by `punktraits train`")
    config = read_json(run / "config.json")
    spec = config.get("model", {})
    if spec.get("name") == "PunkNet":
        model = PunkNet(**{k: v for k, v in spec.items() if k != "name"})
        state = load_weights(run / "model.safetensors")
    elif spec.get("name") == "PaperNets":
        traits = config["traits"]
        nets = []
        for i, t in enumerate(traits):
            net = PaperNets(1, spec["variant"])
            _load_state(net, load_weights(run / "nets" / f"{net_stem(i, t)}.safetensors"), run)
            nets.append(net)
        model, state = PaperNets.stack(nets), None
    else:
        raise RunError(f"{run}/config.json names an unknown model {spec.get('name')!r}")
    if state is not None:
        _load_state(model, state, run)
    return model.eval(), config


def _load_state(model: torch.nn.Module, state: dict, run: Path) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise RunError(
            f"weights in {run} do not fit the model its config.json describes: {first}"
        ) from None


def probabilities(model, config: dict, images: np.ndarray) -> np.ndarray:
    """P(trait) (N, T) for RGBA crops (N, 24, 24, 4), in the order of config['traits']."""
    from .train import grey, predict_ours, predict_paper, rgba

    if config["model"]["name"] == "PunkNet":
        return predict_ours(model, rgba(images))
    soft = predict_paper(model, torch.from_numpy(grey(images)), "cpu")
    return soft[..., model.positive_index].numpy()


def predictions(model, config: dict, prob: np.ndarray) -> np.ndarray:
    from .train import decide

    if config["model"]["name"] == "PunkNet":
        return decide(prob)
    return (prob >= 0.5).astype(np.uint8)  # the paper: argmax of a 2-way softmax


def check_data(config: dict, punks: Punks) -> None:
    want = config.get("data_sha256", {}).get("punks.png")
    got = punks.sha256.get("punks.png")
    if want and got and want != got:
        raise DataError(
            f"the run was trained on punks.png {want[:12]}…, this data folder has {got[:12]}…"
        )


@dataclass
class TestScores:
    """A model's predictions on its run's test split, beside the labels; columns in the order of
    config['traits']."""

    test: np.ndarray  # (N,) test punk ids
    truth: np.ndarray  # (N, T) official labels
    hidden: np.ndarray | None  # (N, T) bool, None without hidden.csv
    prob: np.ndarray  # (N, T)
    pred: np.ndarray  # (N, T) 0/1
    metrics: dict  # metrics.evaluate of pred against truth


def score_test_split(run: Path, model, config: dict, punks: Punks) -> TestScores:
    """Predict the test punks of `run`'s split.json and evaluate the predictions."""
    check_data(config, punks)
    test = np.array(read_json(Path(run) / "split.json")["test"])
    cols = [punks.traits.index(t) for t in config["traits"]]
    truth = punks.labels[test][:, cols]
    hidden = None if punks.hidden is None else punks.hidden[test][:, cols]
    prob = probabilities(model, config, punks.images[test])
    pred = predictions(model, config, prob)
    return TestScores(test, truth, hidden, prob, pred,
                      evaluate(config["traits"], truth, pred, hidden))  # fmt: skip


def finish(run: Path, punks: Punks) -> dict:
    """Evaluate a run folder's saved weights on its test split; write metrics.json and .csv."""
    run = Path(run)
    model, config = load_model(run)
    m = score_test_split(run, model, config, punks).metrics
    if config["model"]["name"] == "PunkNet":
        seconds = read_json(run / "history.json")["train_seconds"]
    else:
        seconds = sum(
            read_json(run / "nets" / f"{net_stem(i, t)}.json")["train_seconds"]
            for i, t in enumerate(config["traits"])
        )
    metrics = {
        "recipe": config["recipe"],
        "seed": config["seed"],
        "epochs": config["epochs"],
        "train_seconds": round(seconds, 2),
        "device": config["device"],
        "threads": config["threads"],
        **m,
    }
    write_json(run / "metrics.json", metrics)
    atomic_write(run / "metrics.csv", to_csv(metrics).encode())
    return metrics
