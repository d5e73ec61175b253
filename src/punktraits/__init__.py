"""punktraits: recognise the 92 traits of the 10,000 CryptoPunks from their images with CNNs.

from punktraits import load_model
model = load_model()                    # the default model shipped with the package
model.predict("punk.png").accessories   # ['Earring', 'Blonde Bob', ...]
"""

from .version import __version__

__all__ = ["load_model", "Predictor", "Prediction", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `import punktraits` (and the CLI's --help) does not pay for torch.
    if name in ("load_model", "Predictor", "Prediction"):
        from . import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'punktraits' has no attribute {name!r}")
