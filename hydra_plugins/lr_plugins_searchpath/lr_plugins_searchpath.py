"""A Hydra SearchPathPlugin that makes lr-plugins' config groups visible to any Hydra app.

Hydra imports every module under the ``hydra_plugins`` namespace package at start-up and calls
``manipulate_search_path``. This one appends ``pkg://lr_plugins.conf``, so an app that has
lr-plugins installed can write, with no YAML copied::

    defaults:
      - schedule: sgdr          # lr_plugins/conf/schedule/sgdr.yaml
      - _self_

and ``hydra.utils.instantiate(cfg.schedule)`` returns an :class:`lr_plugins.SGDR` callback.
The path is appended (lowest priority): an app's own ``schedule/sgdr.yaml`` wins.
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

__all__ = ["LRPluginsSearchPathPlugin", "PATH"]

PATH = "pkg://lr_plugins.conf"


class LRPluginsSearchPathPlugin(SearchPathPlugin):
    """Appends ``pkg://lr_plugins.conf`` (groups ``schedule``, ``snapshot``, ``lr_finder``)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(entry.path == PATH for entry in search_path.get_path()):
            search_path.append(provider="lr-plugins", path=PATH)
