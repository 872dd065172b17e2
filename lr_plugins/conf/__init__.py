"""Config groups that ship with lr-plugins (``schedule``, ``snapshot``, ``lr_finder``).

This folder is a Python package only so that Hydra can address it as ``pkg://lr_plugins.conf``;
the SearchPathPlugin in ``hydra_plugins/lr_plugins_searchpath`` adds it to every Hydra app.
"""
