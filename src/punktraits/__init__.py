"""punktraits: recognise the 92 traits of the 10,000 CryptoPunks from their images with CNNs."""

__version__ = "0.1.0"
