"""``python -m lr_plugins.train``: the same as ``lr-train`` (an alias kept by the public contract).

The app lives in :mod:`lr_plugins.app.train`; no library module imports this one.
"""

from lr_plugins.app.train import cli

__all__ = ["cli"]

if __name__ == "__main__":
    cli()
