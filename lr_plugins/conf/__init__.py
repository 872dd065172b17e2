"""Config groups that ship with lr-plugins (``schedule``, ``snapshot``, ``lr_finder``).

This folder is a Python package only so that Hydra can address it as ``pkg://lr_plugins.conf``.
Nothing adds it to an app behind its back: an app asks with one line in its primary config,
``hydra: {searchpath: [pkg://lr_plugins.conf]}`` (``lr-train`` does, in ``conf/lr_train.yaml``).
"""
