"""The `punktraits` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .data import PunktraitsError

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


def main() -> None:
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
