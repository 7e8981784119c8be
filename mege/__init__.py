"""mege: maximum-entropy generators (GANs as energy models with an entropy term)."""

__version__ = "0.1.0"
