"""ganscope: train, compare, evaluate and explore GANs — one command per experiment."""

__version__ = "0.1.0"
