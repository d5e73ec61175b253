"""Files: atomic writes, JSON, safetensors weights, PNG bytes and data URIs.

Every file is written to a temporary name in its folder and renamed, so a reader (or a run that
was interrupted) never sees half a file. Weights are safetensors and everything else JSON:
loading never unpickles anything.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from safetensors import SafetensorError

from .errors import RunError

if TYPE_CHECKING:
    import torch

# The model shipped with the package: the run folder of `punktraits train --seed 0 --threads 2`
# (docs/RESULTS.md), without its metrics.csv.
DEFAULT_MODEL = Path(__file__).parent / "weights"


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj, indent: int | None = 1) -> None:
    atomic_write(path, (json.dumps(obj, indent=indent) + "\n").encode())


def read_json(path: Path):
    """The JSON in `path`; a missing or broken file is a RunError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path} is missing; is {path.parent} a punktraits run folder?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is not valid JSON ({e.msg if hasattr(e, 'msg') else e})") from None
    except OSError as e:
        raise RunError(f"{path} cannot be read ({e.strerror or e})") from None


# (torch is imported where weights are read or written: a process that only writes answers, as
# `predict --workers`' main one, never loads it)


def save_weights(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    tmp.replace(path)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise RunError(f"{path} is missing; the run did not finish or the folder was changed")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise RunError(f"{path} is not a readable safetensors file ({e})") from None


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def punk_png(punk: np.ndarray) -> bytes:
    """The 24x24 RGBA punk as PNG (pages enlarge it with CSS or canvas, pixelated)."""
    return png_bytes(Image.fromarray(punk, "RGBA"))


def punk_uri(punk: np.ndarray) -> str:
    return data_uri(punk_png(punk))


def slug(name: str) -> str:
    """A file-name part for a trait: "3D Glasses" -> "3d-glasses"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
