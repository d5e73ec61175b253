"""punktraits: recognise the 92 traits of the 10,000 CryptoPunks from their images with CNNs.

from punktraits import load_model
model = load_model()                    # the default model shipped with the package
model.predict("punk.png").accessories   # ['Earring', 'Blonde Bob', ...]
"""

import os

# The normaliser's matrices are small (576 cells): numpy's BLAS threads only wait for each other,
# and on a busy machine their spinning ate its CPU-time budget (a bicubic render read 3 pixels off
# under load). One BLAS thread unless the user chose otherwise; this only takes effect when
# punktraits is imported before numpy (the CLI, the server and the tests are).
# (numpy's wheels use OpenBLAS; torch keeps its own threads, set by --threads.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .version import __version__  # noqa: E402

__all__ = ["load_model", "Predictor", "Prediction", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `import punktraits` (and the CLI's --help) does not pay for torch.
    if name == "Prediction":  # (plain data: no torch)
        from .answer import Prediction

        return Prediction
    if name in ("load_model", "Predictor"):
        from . import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'punktraits' has no attribute {name!r}")
