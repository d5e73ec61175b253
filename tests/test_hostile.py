"""Hostile inputs: damaged run folders, two trainings of one folder, odd requests to the web app,
odd image files, and seeded random mutations of real images (a fuzz test). Each case asserts the
exact outcome: the one-line message, the HTTP status, the exit code; and that nothing else was
lost (the other files of a batch are answered, a running training keeps its folder)."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from punktraits import data as D
from punktraits.cli import main
from punktraits.errors import RunError
from punktraits.run import DEFAULT_MODEL, LOCK, Run, TrainConfig, locked, train

HERE = Path(__file__).parent


def cli(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """`punktraits ARGS` as the console script runs it (main(): errors are one line, exit 2)."""
    monkeypatch.setattr(sys, "argv", ["punktraits", *map(str, args)])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A copy of the shipped model's run folder, to damage."""
    run = tmp_path / "run"
    shutil.copytree(DEFAULT_MODEL, run)
    return run


class Replace:
    """A change that replaces the whole JSON value (others edit it in place)."""

    def __init__(self, fn):
        self.fn = fn


def edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    if isinstance(change, Replace):
        obj = change.fn(obj)
    else:
        change(obj)
    path.write_text(json.dumps(obj))


# --- config.json ---------------------------------------------------------------------------------


def swap_types(c):
    c["traits"][0], c["traits"][5] = c["traits"][5], c["traits"][0]


CONFIGS = {
    "a list": (Replace(lambda c: [c, c]), "must be a JSON object (got a list)"),
    "a string": (Replace(lambda c: "ours"), "must be a JSON object (got a string)"),
    "no recipe": (lambda c: c.pop("recipe"), "recipe is missing"),
    "unknown recipe": (lambda c: c.update(recipe="nope"), "unknown recipe 'nope'; choose one of "),
    "recipe a number": (lambda c: c.update(recipe=3), "recipe must be a string (got 3)"),
    "extra model argument": (
        lambda c: c["model"].update(depth=3), "model.depth is not an argument of PunkNet"),
    "string model argument": (
        lambda c: c["model"].update(embed="a"), "model.embed must be an integer (got 'a')"),
    "float model argument": (
        lambda c: c["model"].update(embed=16.0), "model.embed must be an integer (got 16.0)"),
    "bool model argument": (
        lambda c: c["model"].update(width=True), "model.width must be an integer (got True)"),
    "negative model argument": (
        lambda c: c["model"].update(hidden=-3), "model.hidden must be at least 1 (got -3)"),
    "missing model argument": (lambda c: c["model"].pop("n_colours"), "model.n_colours is missing"),
    "other model": (
        lambda c: c["model"].update(name="ResNet"), "model.name must be 'PunkNet' (got 'ResNet')"),
    "model a string": (
        lambda c: c.update(model="PunkNet"), "model must be an object (got 'PunkNet')"),
    "unknown trait": (
        lambda c: c["traits"].__setitem__(10, "Laser Eyes"),
        "traits[10] 'Laser Eyes' is not one of the 92 trait names"),
    "missing trait": (
        lambda c: c["traits"].remove("Earring"), "traits has 91 names but model.n_traits is 92"),
    "a trait twice": (
        lambda c: c["traits"].__setitem__(91, "Mole"), "traits[91] 'Mole' is listed twice"),
    "types not first": (swap_types, "traits must begin with the 5 types Alien, Ape, Zombie, "
                                    "Female, Male"),
    "traits a string": (lambda c: c.update(traits="Alien"), "traits must be a list (got 'Alien')"),
    "no traits": (lambda c: c.update(traits=[]), "traits must not be empty"),
    "epochs a string": (lambda c: c.update(epochs="12"), "epochs must be an integer (got '12')"),
    "threads zero": (lambda c: c.update(threads=0), "threads must be at least 1 (got 0)"),
    "data hashes a string": (
        lambda c: c.update(data_sha256="abc"), "data_sha256 must be an object (got 'abc')"),
    "a long odd name": (
        lambda c: c["traits"].__setitem__(10, "x" * 100_000),
        "traits[10] 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx… is not one of the 92 trait names"),
}  # fmt: skip


@pytest.mark.parametrize("case", CONFIGS)
def test_odd_config_is_one_line_naming_file_and_field(case, model_dir, capsys, monkeypatch):
    change, message = CONFIGS[case]
    edit_json(model_dir / "config.json", change)
    with pytest.raises(RunError) as e:
        Run.open(model_dir)
    assert str(e.value).startswith(f"{model_dir / 'config.json'}: {message}")
    assert "\n" not in str(e.value) and len(str(e.value)) < 200
    code, out, err = cli(["predict", "--model", model_dir, HERE], capsys, monkeypatch)
    assert (code, out) == (2, "") and err == f"error: {e.value}\n"


def test_the_shipped_config_and_every_file_pass(capsys):
    run = Run.open()
    assert len(run.split.test) == 2000 and len(run.palette[0]) == 222
    assert run.history["best_epoch"] >= 1 and run.metrics()["macro_f1"] > 0.99


# --- split.json, palette.json, history.json, metrics.json ------------------------------------

SPLITS = {
    "id -1": (lambda s: s["test"].__setitem__(0, -1), "test[0] must be a punk id 0..9999 (got -1)"),
    "id 10000": (lambda s: s["train"].__setitem__(3, 10_000),
                 "train[3] must be a punk id 0..9999 (got 10000)"),
    "a string id": (lambda s: s["test"].__setitem__(1, "5"), "test[1] must be an integer (got '5')"),
    "a float id": (lambda s: s["test"].__setitem__(1, 5.0), "test[1] must be an integer (got 5.0)"),
    "empty test": (lambda s: s.update(test=[]), "test must not be empty"),
    "no train": (lambda s: s.pop("train"), "train is missing"),
    "an extra key": (lambda s: s.update(validation=[1]), "validation is not a known field"),
    "overlap": (lambda s: s["test"].__setitem__(0, s["train"][0]), "punk 0 is in both train and test"),
    "a test id twice": (lambda s: s["test"].__setitem__(1, s["test"][0]), "test lists punk 4 twice"),
    "a list": (Replace(lambda s: [s["train"], s["test"]]), "must be a JSON object (got a list)"),
    "fewer test ids than n_test": (
        lambda s: s["test"].pop(), "test has 1999 ids but config.json says n_test 2000"),
}  # fmt: skip


@pytest.mark.parametrize("case", SPLITS)
def test_odd_split_is_refused(case, model_dir):
    change, message = SPLITS[case]
    edit_json(model_dir / "split.json", change)
    with pytest.raises(RunError) as e:
        Run.open(model_dir).split  # noqa: B018
    assert str(e.value) == f"{model_dir / 'split.json'}: {message}"


def test_test_id_minus_one_no_longer_scores_punk_9999(model_dir, data_dir, capsys, monkeypatch):
    edit_json(model_dir / "split.json", lambda s: s["test"].__setitem__(0, -1))
    code, out, err = cli(["evaluate", model_dir, "--data-dir", data_dir], capsys, monkeypatch)
    assert code == 2 and out == ""
    assert err == f"error: {model_dir / 'split.json'}: test[0] must be a punk id 0..9999 (got -1)\n"
    assert json.loads((model_dir / "metrics.json").read_text()) == json.loads(
        (DEFAULT_MODEL / "metrics.json").read_text())  # fmt: skip


PALETTES = {
    "a string": (Replace(lambda p: "junk"), "must be a JSON object (got a string)"),
    "colours a string": (lambda p: p.update(colours="x"), "colours must be a list (got 'x')"),
    "3 channels": (lambda p: p["colours"].__setitem__(3, [1, 2, 3]),
                   "colours[3] must be 4 values 0..255 (RGBA), got [1, 2, 3]"),
    "a value of 300": (lambda p: p["colours"].__setitem__(1, [300, 0, 0, 255]),
                       "colours[1] must be 4 values 0..255 (RGBA), got [300, 0, 0, 255]"),
    "counts short": (lambda p: p["counts"].pop(), "counts has 221 values for 222 colours"),
    "a colour twice": (lambda p: p["colours"].__setitem__(1, p["colours"][0]),
                       "colour (0, 0, 0, 0) is listed twice"),
    "no colours": (lambda p: p.update(colours=[], counts=[]), "colours must not be empty"),
}  # fmt: skip


@pytest.mark.parametrize("case", PALETTES)
def test_odd_palette_is_refused_when_the_model_loads(case, model_dir):
    from punktraits.predict import load_model

    change, message = PALETTES[case]
    edit_json(model_dir / "palette.json", change)
    with pytest.raises(RunError) as e:
        load_model(model_dir)
    assert str(e.value) == f"{model_dir / 'palette.json'}: {message}"


HISTORIES = {
    "empty": (Replace(lambda h: {}), "epochs is missing"),
    "a list": (Replace(lambda h: []), "must be a JSON object (got a list)"),
    "no best epoch": (lambda h: h.pop("best_epoch"), "best_epoch is missing"),
    "best epoch after the last": (lambda h: h.update(best_epoch=99),
                                  "best_epoch 99 is after the last of 12 epochs"),
    "a loss that is text": (lambda h: h["epochs"][0].update(train_loss="x"),
                            "epochs[0].train_loss must be a number (got 'x')"),
    "no train seconds": (lambda h: h.pop("train_seconds"), "train_seconds is missing"),
    "steps without their length": (lambda h: h.pop("steps_per_epoch"),
                                   "steps_per_epoch is missing (the per-step curves need it)"),
}  # fmt: skip


@pytest.mark.parametrize("case", HISTORIES)
def test_odd_history_is_refused(case, model_dir):
    change, message = HISTORIES[case]
    edit_json(model_dir / "history.json", change)
    with pytest.raises(RunError) as e:
        Run.open(model_dir).history  # noqa: B018
    assert str(e.value).startswith(f"{model_dir / 'history.json'}: {message}")


def _macro(m):
    m["macro_f1"] = 0.99999


METRICS = {
    "a list": (Replace(lambda m: [m]), "must be a JSON object (got a list)"),
    "partial": (lambda m: m.pop("per_trait"), "per_trait is missing"),
    "an edited macro F1": (_macro, "macro_f1 is 0.99999 but the mean of per_trait f1 is 0.992934"),
    "an edited trait F1": (lambda m: m["per_trait"]["Alien"].update(f1=0.5),
                           "per_trait.Alien.f1 is 0.5 but its counts give 1.000000"),
    "counts that do not add up": (lambda m: m["per_trait"]["Ape"].update(tp=4),
                                  "per_trait.Ape: tp + fp + fn + tn is 1999, not n_test 2000"),
    "a NaN": (lambda m: m.update(exact_match=float("nan")),
              "exact_match must be a finite number (got nan)"),
    "a share over 1": (lambda m: m.update(exact_match=1.5), "exact_match must be at most 1 (got 1.5)"),
}  # fmt: skip


@pytest.mark.parametrize("case", METRICS)
def test_odd_metrics_are_refused(case, model_dir):
    change, message = METRICS[case]
    edit_json(model_dir / "metrics.json", change)
    with pytest.raises(RunError) as e:
        Run.open(model_dir).metrics()
    assert str(e.value) == f"{model_dir / 'metrics.json'}: {message}"


def test_report_refuses_an_edited_macro_f1_and_a_consistent_lie(model_dir, data_dir, capsys,
                                                                monkeypatch):  # fmt: skip
    edit_json(model_dir / "metrics.json", _macro)
    code, out, err = cli(["report", model_dir, "--data-dir", data_dir], capsys, monkeypatch)
    assert code == 2 and not (model_dir / "report.html").exists()
    assert err.splitlines()[-1] == (f"error: {model_dir / 'metrics.json'}: macro_f1 is 0.99999 "
                                    "but the mean of per_trait f1 is 0.992934")  # fmt: skip
    # A lie that agrees with itself (exact match raised) is caught against the weights.
    shutil.copy(DEFAULT_MODEL / "metrics.json", model_dir / "metrics.json")
    edit_json(model_dir / "metrics.json", lambda m: m.update(exact_match=0.9999))
    code, out, err = cli(["report", model_dir, "--data-dir", data_dir], capsys, monkeypatch)
    assert code == 2 and not (model_dir / "report.html").exists()
    assert err.splitlines()[-1] == (
        f"error: {model_dir}/metrics.json does not match the saved weights on this data "
        f"(exact_match); run `punktraits evaluate {model_dir}` first")  # fmt: skip


# --- weights -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load(value, model_dir, data_dir, tmp_path, capsys,
                                                monkeypatch):  # fmt: skip
    f = model_dir / "model.safetensors"
    state = load_file(str(f))
    key = next(k for k, v in state.items() if v.is_floating_point() and k != "palette")
    state[key] = state[key].clone()
    state[key].view(-1)[7] = value
    save_file(state, str(f))
    message = f"{f} holds non-finite weights (NaN or inf); retrain or restore the file"
    with pytest.raises(RunError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        Run.open(model_dir)
    for args in (["evaluate", model_dir, "--data-dir", data_dir],
                 ["predict", "--model", model_dir, HERE, "--format", "json"]):  # fmt: skip
        code, out, err = cli(args, capsys, monkeypatch)
        assert (code, out, err) == (2, "", f"error: {message}\n"), args
    from punktraits.server import create_app

    with pytest.raises(RunError, match="holds non-finite weights"):
        create_app(model_dir, gallery=False)


# --- one training per folder ---------------------------------------------------------------------

HOLD = """
import sys, time
from pathlib import Path
from punktraits.run import locked
with locked(Path(sys.argv[1]), "wait for it or pass another --out"):
    print("held", flush=True)
    time.sleep(60)
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_second_training_of_a_folder_fails_at_once(tmp_path, data_dir):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    holder = hold_lock(folder)
    try:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "punktraits", "train", "--data-dir", data_dir,
                            "--dry-run", "--out", folder], capture_output=True, text=True,
                           timeout=120)  # fmt: skip
        assert r.returncode == 2, r.stderr
        assert r.stderr.splitlines()[-1] == (
            f"error: {folder} is being trained by process {holder.pid}; wait for it or pass "
            "another --out"
        )
        assert time.perf_counter() - t0 < 60
        assert sorted(p.name for p in folder.iterdir()) == [LOCK, "keep.txt"]  # nothing written
        r = subprocess.run([sys.executable, "-m", "punktraits", "evaluate", folder],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert r.returncode == 2
    finally:
        holder.kill()
        holder.wait()
    # The holder was killed: its lock file is left, and is taken over.
    assert (folder / LOCK).read_text() == f"{holder.pid}\n"
    with locked(folder, "pass another --out"):
        assert (folder / LOCK).read_text() == f"{os.getpid()}\n"
    assert not (folder / LOCK).exists()


def test_two_real_trainings_of_one_folder(tmp_path, data_dir):
    folder = tmp_path / "x"
    cmd = [sys.executable, "-m", "punktraits", "train", "--data-dir", str(data_dir), "--dry-run",
           "--threads", "1", "--out", str(folder)]  # fmt: skip
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        if (folder / LOCK).exists() or first.poll() is not None:
            break
        time.sleep(0.05)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 2
    assert second.stderr.splitlines()[-1] == (
        f"error: {folder} is being trained by process {first.pid}; wait for it or pass another "
        "--out"
    )
    assert not (folder / LOCK).exists()
    Run.open(folder).metrics()  # the first run's folder is whole


def test_a_stale_lock_is_taken_over_and_released(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK).write_text("999999999\n")  # no such process
    tiny = D.synthetic(200, seed=1)
    train(tiny, TrainConfig(n_test=40, epochs=1), folder, progress=False)
    assert not (folder / LOCK).exists()
    Run.open(folder).metrics()


def test_the_lock_is_released_on_interrupt_and_refused_to_another_thread(tmp_path):
    import threading

    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with locked(folder, "pass another --out"):
            raise KeyboardInterrupt
    assert not (folder / LOCK).exists()
    errors = []
    with locked(folder, "pass another --out"):
        with locked(folder, "nested in one thread is fine"):
            pass

        def other():
            try:
                with locked(folder, "pass another --out"):
                    pass
            except RunError as e:
                errors.append(str(e))

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert errors == [f"{folder} is being trained by process {os.getpid()}; pass another --out"]


def test_a_killed_training_leaves_a_lock_that_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = hold_lock(folder)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with locked(folder, "pass another --out"):
        pass
    assert not (folder / LOCK).exists()


_ = (copy, io, np, torch)
