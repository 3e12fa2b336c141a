"""ganscope: train, compare, evaluate and explore GANs — one command per experiment."""

# The one place the version lives: the wheel's metadata reads it from here
# ([tool.hatch.version] in pyproject.toml) and `ganscope --version` prints it.
__version__ = "0.1.0"
