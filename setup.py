"""Packaging glue that pyproject.toml alone cannot express.

The lr-train app's primary config lives in the top-level ``conf/`` folder (see DESIGN.md). So
that ``lr-train`` also works from an installed wheel, ``conf/`` is shipped inside the wheel as
the package data folder ``lr_plugins/app/_conf`` (a package-dir mapping). In a source checkout
or an editable install, ``lr_plugins.app.train`` reads ``conf/`` directly.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

APP_CONF = "lr_plugins.app._conf"
packages = find_namespace_packages(include=["lr_plugins", "lr_plugins.*"])
packages += [APP_CONF] + [f"{APP_CONF}.{p}" for p in find_namespace_packages(where="conf")]
packages = [p for p in packages if "__pycache__" not in p]

setup(
    packages=packages,
    package_dir={APP_CONF: str(Path("conf"))},
)
