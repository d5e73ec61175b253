"""The `punktraits` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .errors import PunktraitsError
from .version import __version__

DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with punks.png, traits.csv [, hidden.csv]. Default: $PUNKTRAITS_DATA, "
    "else the per-user cache (downloaded on first use).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="punktraits")
def cli() -> None:
    """Recognise the 92 traits of the CryptoPunks from their images."""


@cli.command()
@DATA_DIR
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write images/<id>.png, traits_dummies.csv and contact_sheet.png here.",
)
def data(data_dir: Path | None, export_dir: Path | None) -> None:
    """Prepare and verify the dataset, then print its summary."""
    from . import data as D

    punks = D.load(data_dir)
    s = punks.summary()
    click.echo(f"data folder   {punks.data_dir}")
    for name, sha in punks.sha256.items():
        official = {
            "punks.png": D.PUNKS_PNG_SHA256,
            "traits.csv": D.TRAITS_CSV_SHA256,
            "hidden.csv": D.HIDDEN_CSV_SHA256,
        }[name]
        if name == "punks.png":
            note = "= on-chain imageHash"
        elif sha == official:
            note = "= verified release"
        else:
            note = "parsed and checked (not byte-equal to the verified release)"
        click.echo(f"  {name:<11} sha256 {sha}  {note}")
    click.echo(f"punks         {s['punks']:,}")
    click.echo(f"traits        {s['traits']} (5 types + 87 accessories), {s['labels']:,} labels")
    click.echo("rarest        " + ", ".join(f"{n} {c}" for n, c in s["rarest"]))
    click.echo("commonest     " + ", ".join(f"{n} {c:,}" for n, c in s["commonest"]))
    dist = " / ".join(str(c) for c in s["accessory_counts"])
    click.echo(f"accessories per punk (0..7)  {dist}")
    if s["hidden"] is None:
        click.echo("hidden labels unknown (no hidden.csv): visible-label metrics are unavailable")
    else:
        n_punks = int(punks.hidden.any(1).sum())
        click.echo(f"hidden labels {s['hidden']} in {n_punks} punks (no visible pixel; hidden.csv)")
    if export_dir is not None:
        D.export(punks, export_dir)
        click.echo(
            f"exported {len(punks):,} images, traits_dummies.csv and contact_sheet.png "
            f"to {export_dir}"
        )


def print_summary(metrics: dict, out: Path | None = None) -> None:
    from .metrics import best_worst, shares, table

    click.echo(table(metrics))
    worst, best = best_worst(metrics)
    click.echo("\nworst F1 (paper Table I):  " + ", ".join(f"{n} {r['f1']:.3f}" for n, r in worst))
    click.echo("best F1  (paper Table II): " + ", ".join(f"{n} {r['f1']:.3f}" for n, r in best))
    sh = shares(metrics)
    click.echo("share of traits        >= 0.8    = 1")
    for key, v in sh.items():
        click.echo(f"  {key:<20} {v['ge_0.8']:>6.1%} {v['eq_1']:>6.1%}")
    line = (
        f"\nmacro F1 {metrics['macro_f1']:.4f}   exact match {metrics['exact_match']:.2%}   "
        f"on {metrics['n_test']:,} test punks"
    )
    if metrics.get("macro_f1_visible") is not None:
        line += (
            f"\nvisible labels: macro F1 {metrics['macro_f1_visible']:.4f}   exact match "
            f"{metrics['exact_match_visible']:.2%}   (ceiling on official labels "
            f"{metrics['macro_f1_ceiling']:.4f})"
        )
    click.echo(line)
    click.echo(
        f"trained {metrics['recipe']} in {metrics['train_seconds']:,.1f} s on "
        f"{metrics['device']} ({metrics['threads']} threads)"
        + (f"; run folder {out}" if out else "")
    )


@cli.command()
@DATA_DIR
@click.option(
    "--recipe",
    default="ours",
    show_default=True,
    help="ours: one colour CNN; paper: the seed paper's 92 binary CNNs (recipes/).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epochs (default 12; ours stops early when validation is perfect).",
)
@click.option(
    "--traits",
    "traits",
    multiple=True,
    metavar="NAME",
    help="Paper recipe: train only these traits' nets (repeat the option).",
)
@click.option(
    "--variant",
    type=click.Choice(["code", "text"]),
    default="code",
    show_default=True,
    help="Paper recipe: the authors' main.py, or the paper's prose.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Weights and sampling seed.")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Train/test split seed.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run folder (default runs/<recipe>-seed<seed>). An existing one is resumed.",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for torch (default: torch's choice).",
)
@click.option(
    "--group",
    type=click.IntRange(min=1),
    default=None,
    help="Paper recipe: nets trained side by side (default: all on CUDA, 1 on CPU).",
)
@click.option("--drawn", type=click.IntRange(min=0), default=None,
              help="Ours: new punks drawn by the sprites learned from the training split "
              "(default 60,000; 0: none).")  # fmt: skip
@click.option("--drawn-share", type=click.FloatRange(0, 0.9), default=None,
              help="Ours: share of each epoch's punks that are drawn ones (default 0.75).")  # fmt: skip
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Ours: a setting (repeatable): lr, embed, width, hidden; temper and "
              "head_temper (drawn accessories and heads picked by frequency**temper), any_pair "
              "(0/1), val_drawn (drawn punks held out to validate), stop_perfect (0/1), replay "
              "(share of drawn punks that are the hardest seen). Recorded in config.json.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="A tiny budget that runs every code path.")
def train(
    data_dir,
    recipe,
    epochs,
    traits,
    variant,
    seed,
    split_seed,
    out,
    device,
    threads,
    group,
    drawn,
    drawn_share,
    settings,
    dry_run,
) -> None:
    """Train a model, evaluate it on the test split, write a run folder."""
    from . import data as D
    from . import recipes
    from .run import TrainConfig
    from .run import train as run_training

    chosen = recipes.get(recipe)  # an unknown name fails before the data is loaded
    if traits and recipe != "paper":
        raise click.UsageError("--traits applies to --recipe paper only")
    extra = {}
    for item in settings:
        key, eq, value = item.partition("=")
        try:
            extra[key.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq or not key.strip():
            raise click.UsageError(f"--set {item!r}: write KEY=NUMBER, e.g. --set width=64")
    unknown = sorted(set(extra) - set(chosen.knobs))
    if unknown:
        known = f"its settings: {', '.join(chosen.knobs)}" if chosen.knobs else "it has none"
        raise click.UsageError(f"--set {', '.join(unknown)}: not a setting of --recipe {recipe} "
                               f"({known})")  # fmt: skip
    cfg = TrainConfig(
        recipe=recipe,
        epochs=epochs,
        traits=tuple(traits),
        seed=seed,
        split_seed=split_seed,
        device=device,
        threads=threads,
        variant=variant,
        group=group,
        drawn=drawn,
        drawn_share=drawn_share,
        dry_run=dry_run,
        extra=extra,
    )
    out = out or Path("runs") / f"{recipe}-seed{seed}"
    punks = D.load(data_dir)
    metrics = run_training(punks, cfg, out)
    print_summary(metrics, out)


@cli.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@DATA_DIR
def evaluate(run: Path, data_dir: Path | None) -> None:
    """Recompute a run folder's test metrics from its saved weights."""
    from . import data as D
    from .run import Run

    metrics = Run.open(run).evaluate(D.load(data_dir))
    print_summary(metrics, run)
    click.echo(f"wrote {run / 'metrics.json'} and {run / 'metrics.csv'}")


@cli.command()
@click.argument("run_a", type=click.Path(file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the comparison as CSV here.",
)
def compare(run_a: Path, run_b: Path, csv_path: Path | None) -> None:
    """Per-trait F1 of two run folders side by side, and their aggregates."""
    from .files import atomic_write
    from .metrics import compare as compare_metrics
    from .schema import read_metrics

    a, b = read_metrics(run_a / "metrics.json"), read_metrics(run_b / "metrics.json")
    text, table_csv = compare_metrics(
        a, b, (a["recipe"], b["recipe"]) if a["recipe"] != b["recipe"] else ("A", "B")
    )
    click.echo(f"A = {run_a} ({a['recipe']}), B = {run_b} ({b['recipe']})")
    click.echo(text)
    if csv_path:
        atomic_write(csv_path, table_csv.encode())
        click.echo(f"wrote {csv_path}")


@cli.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--compare",
    "other",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A second run folder to show side by side (summary, F1 per trait, Fig. 15).",
)
@DATA_DIR
def report(run: Path, other: Path | None, data_dir: Path | None) -> None:
    """Write RUN/report.html: the paper's tables and figures for a run, and more."""
    from . import data as D
    from .files import read_json
    from .report import FIGURES, build

    for folder in (run, other) if other else (run,):
        read_json(folder / "metrics.json")  # a wrong folder fails now, not after loading data
    out = build(run, D.load(data_dir), other)
    n = len(list((run / FIGURES).glob("*.png")))
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained) "
               f"and {n} figures in {run / FIGURES}")  # fmt: skip


MODEL = click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A run folder (default: the model shipped with punktraits).",
)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@MODEL
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "jsonl", "csv", "onchain", "opensea"]),
    default="table",
    show_default=True,
    help="Output format; jsonl writes one JSON object per line as each image is done; onchain "
    "the CryptopunksData punkAttributes() string; opensea OpenSea metadata JSON.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch (default: torch's choice; on a busy machine 1 is "
              "often fastest).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that read and predict the files, each with its own model and "
              "--threads (default 1) torch threads; answers keep the files' order.")  # fmt: skip
def predict(paths, model_dir, fmt, batch_size, threads, workers) -> None:
    """Predict the traits of image files and folders (searched recursively).

    A picture that is not one punk (a page, a grid, a sheet like punks.png, a punk with a
    caption or a frame) gives one answer per punk found in it, each with its box.
    Exit code 1 when any image could not be read; the others are still predicted."""
    import csv as csv_mod
    import itertools

    from tqdm import tqdm

    from .folder import expand_paths, iter_find_parallel, run_traits

    files = expand_paths(paths)
    if workers > 1 and len(files) > 1:
        # The workers load their models; this process only writes their answers (no torch,
        # no model: ~2 s of a core left to them). Their first answers come before any output,
        # so a model that does not load is said alone, as with one process.
        answers = iter(iter_find_parallel(model_dir, files, workers, batch_size, threads or 1))
        answers = itertools.chain([next(answers)], answers)
        traits = run_traits(model_dir)
    else:
        from .predict import load_model

        if threads:
            import torch

            torch.set_num_threads(threads)
        model = load_model(model_dir)  # (a model that does not load is said before the files)
        if not files:
            raise click.UsageError("no image files found in the given paths")
        traits = model.traits
        answers = model.iter_find(files, batch_size)
    failed = 0
    out = sys.stdout
    writer = None
    if fmt == "json":
        out.write("[\n")
    elif fmt == "csv":
        writer = csv_mod.writer(out, lineterminator="\n")
        writer.writerow(["file", "error", "type", "head", "verified", "mirrored", "box"]
                        + traits)  # fmt: skip
    emit = _emit(fmt, out, writer, traits, len(files) > 1)
    bar = tqdm(total=len(files), unit="img", desc="predict", disable=len(files) < 50)
    try:  # an interrupted run keeps what it did: json closes its list, jsonl is line by line
        n = 0
        for found in answers:
            bar.update(1)
            failed += any(p.error is not None for p in found)
            for p in found:
                emit(p, n)
                n += 1
    finally:
        bar.close()
        if fmt == "json":
            out.write("\n]\n")
    if failed:
        click.echo(f"{failed} of {len(files)} images could not be read", err=True)
        sys.exit(1)


def _emit(fmt: str, out, writer, traits: list[str], several: bool):
    """How one answer is written in each format."""
    from .collection import onchain, opensea

    def emit(p, n: int) -> None:
        where = one_line(p.file) + (" [{}, {}, {}, {}]".format(*p.box) if p.box else "")
        if fmt == "json":
            out.write(("" if n == 0 else ",\n") + p.to_json())
        elif fmt == "jsonl":
            out.write(p.to_json() + "\n")
            out.flush()
        elif fmt == "csv":
            row = [int(t == p.type or t in p.accessories) for t in traits]
            writer.writerow([p.file, p.error or "", p.type or "", p.head or "",
                             "" if p.verified is None else int(p.verified), int(p.mirrored),
                             " ".join(map(str, p.box)) if p.box else ""]
                            + (row if not p.error else []))  # fmt: skip
        elif p.error and fmt in ("onchain", "opensea"):
            click.echo(f"error: {one_line(p.error)}", err=True)
        elif fmt == "onchain":
            text = onchain(p.head or p.type, p.accessories)
            click.echo(f"{where}\t{text}" if several or p.box else text)
        elif fmt == "opensea":
            meta = opensea(p.head or p.type, p.accessories, id=(p.original or {}).get("id"))
            if several or p.box:
                meta = {"file": p.file, **({"box": p.box} if p.box else {}), **meta}
            out.write(json.dumps(meta) + "\n")
        elif p.error:
            click.echo(f"error: {one_line(p.error)}")
        else:
            acc = ", ".join(p.accessories) or "no accessories"
            ties = [f"{t['head'].split()[0]}; {', '.join(t['accessories']) or 'no accessories'}"
                    for t in (p.check or {}).get("ties", [])]  # fmt: skip
            click.echo(
                f"{where}: {p.type}; {acc}{' (mirrored)' if p.mirrored else ''}"
                + (f" (or: {' | '.join(ties)} — the file cannot tell)" if ties else "")
            )

    return emit


@cli.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@MODEL
@click.option(
    "--trait", default=None, help="Explain this trait only (default: every predicted one)."
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG to write (default: <image>.explain.png).",
)
def explain(image, model_dir, trait, out_path) -> None:
    """Write a PNG: the punk enlarged, and a heatmap of the pixels behind each trait."""
    from .files import atomic_write, png_bytes
    from .predict import load_model

    model = load_model(model_dir)
    picture, heat = model.explain(image, trait)
    out_path = out_path or image.with_name(image.name + ".explain.png")
    atomic_write(out_path, png_bytes(picture))
    for name, h in heat.items():
        y, x = divmod(int(h.argmax()), 24)
        click.echo(f"{name}: hottest pixel row {y}, column {x}")
    p = model.predict(image)
    if p.verified is None:
        click.echo(f"drawn back: {p.check['note'] if p.check else 'not checked'}")
    else:
        click.echo(f"drawn back {said_check(p)}")
    click.echo(f"wrote {out_path}")


def said_check(p) -> str:
    """How an answer was drawn back, in words."""
    answer = f"{p.head}; {', '.join(p.accessories) or 'no accessories'}"
    fit = p.check.get("image_fit")
    if p.check.get("ties"):
        others = " or ".join(
            f"{t['head']}; {', '.join(t['accessories']) or 'no accessories'}"
            for t in p.check["ties"]
        )
        return (
            f"and re-encoded, it gives the file back exactly, but so does {others}: the file "
            f"cannot tell them apart (not verified; the one with fewer traits): {answer}"
        )
    if fit and p.verified:
        return f"and re-encoded, it gives the file back exactly: {answer}"
    if p.verified:
        return f"pixel for pixel: {answer}"
    if fit:
        return (
            f"explaining the image with RMS {fit['rms']:.1f} (the pixel-by-pixel reading "
            f"{fit['reading_rms']:.1f}; not verified): {answer}"
        )
    return f"with {p.check['differing_pixels']} pixels that differ (not verified)"


@cli.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--id", "punk_id", type=click.IntRange(0, 9999), default=None,
              help="One of the 10,000 punks, by id.")  # fmt: skip
@click.option("--traits", "traits", default=None, metavar="'HEAD, ACCESSORY, ...'",
              help="A trait set, e.g. 'Male 2, Earring, Top Hat' (the on-chain string).")  # fmt: skip
@MODEL
@DATA_DIR
def rarity(path, punk_id, traits, model_dir, data_dir) -> None:
    """How rare a punk is: rarity.tools and OpenRarity scores, rank and percentile among the
    10,000 (ties share a rank). Give an image PATH, --id N or --traits '…'."""
    from . import data as D
    from .collection import Rarity, layered, punk_item, split_head

    if sum(x is not None for x in (path, punk_id, traits)) != 1:
        raise click.UsageError("give one of PATH, --id N or --traits 'HEAD, ACCESSORY, ...'")
    punks = D.load(data_dir)
    if path is not None:
        from .predict import load_model

        p = load_model(model_dir).predict(path)
        head, acc = p.head or p.type, p.accessories
    elif punk_id is not None:
        head = punks.skins[punk_id] or D.TYPES[int(punks.labels[punk_id, : len(D.TYPES)].argmax())]
        acc = list(punks.layers[punk_id])
    else:
        head, *acc = [t.strip() for t in traits.split(",") if t.strip()] or [""]
        kind, _ = split_head(head)
        if kind not in D.TYPES:
            raise click.BadParameter(f"{head[:40]!r} is not a head; start with e.g. 'Male 2'")
    acc = layered(acc)
    table = Rarity.from_labels(punks.labels)
    r = table.rank(punk_item(split_head(head)[0], acc))
    click.echo(", ".join([head, *acc]))  # the on-chain form
    for name, key in (("rarity.tools", "rarity_tools"), ("OpenRarity", "openrarity")):
        v = r[key]
        click.echo(f"  {name:<13} score {v['score']:,.4f}   rank {v['rank']:,} of {table.n:,}   "
                   f"rarer than {v['percentile']:.2f}%")  # fmt: skip


@cli.command()
@click.argument("head")
@click.argument("accessories", nargs=-1)
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="PNG to write.")  # fmt: skip
@click.option("--scale", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Pixels per punk pixel (nearest neighbour).")  # fmt: skip
@click.option("--background", default="transparent", show_default=True,
              help="'transparent' or a colour like '#638596' (the site blue).")  # fmt: skip
@DATA_DIR
def render(head, accessories, out_path, scale, background, data_dir) -> None:
    """Draw a punk from its head and accessories with the drawing rules learned from the
    training split, e.g. `punktraits render "Male 2" Earring "Top Hat" -o punk.png`."""
    from PIL import Image, ImageColor

    from . import data as D
    from .files import atomic_write, png_bytes
    from .sprites import sprites_for

    punks = D.load(data_dir)
    sprites = sprites_for(punks, D.split(punks.labels, seed=0)[0])
    punk = sprites.render(head, accessories)
    image = Image.fromarray(punk, "RGBA").resize((24 * scale, 24 * scale), Image.NEAREST)
    if background != "transparent":
        try:
            colour = ImageColor.getrgb(background)[:3]
        except ValueError:
            raise click.BadParameter(f"{background!r} is not a colour; try '#638596'") from None
        image = Image.alpha_composite(Image.new("RGBA", image.size, colour + (255,)), image)
        image = image.convert("RGB")  # opaque: no alpha channel
    atomic_write(out_path, png_bytes(image))
    drawn = sorted(accessories, key=sprites.order.index)
    click.echo(f"wrote {out_path} ({image.width}x{image.height}): {head}; "
               f"{', '.join(drawn) or 'no accessories'} (in layer order)")  # fmt: skip


@cli.command()
@MODEL
@click.option(
    "--onnx",
    "onnx_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write the model as ONNX here (input rgba (N,4,24,24) in [0,1]).",
)
def export(model_dir, onnx_path) -> None:
    """Export a model (default: the shipped one) to ONNX."""
    from .predict import load_model

    load_model(model_dir).export_onnx(onnx_path)
    click.echo(f"wrote {onnx_path}")


@cli.command()
@MODEL
@DATA_DIR
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 exposes it to the network).")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--max-upload-mb", type=click.FloatRange(min=0.001), default=5.0, show_default=True,
              help="Refuse uploads over this size (413).")  # fmt: skip
@click.option("--gallery/--no-gallery", default=True, show_default=True,
              help="Show the test punks of the model's split (needs the data folder).")  # fmt: skip
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch (default: torch's choice).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes, each with the model (use one per core for JPEG uploads).")  # fmt: skip
def serve(model_dir, data_dir, host, port, max_upload_mb, gallery, threads, workers) -> None:
    """Start the web page and JSON API: drop a punk, see its traits and why."""
    from .server import serve as run_server

    click.echo(f"punktraits on http://{host}:{port}/  (API docs /docs; Ctrl-C stops it)")
    run_server(
        model_dir, data_dir, host, port, gallery, int(max_upload_mb * 1024 * 1024), threads, workers
    )


def one_line(text: str | None) -> str:
    """A file name or message on one line: control characters (a newline in a name) escaped."""
    text = str(text)
    return json.dumps(text)[1:-1] if any(ord(c) < 32 or c == "\x7f" for c in text) else text


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    import signal

    # SIGTERM (`kill`, `timeout`, a scheduler) ends a command as Ctrl-C does: what was written
    # is closed (json's list), worker processes stop, no traceback
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        cli(standalone_mode=False)
    except PunktraitsError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
