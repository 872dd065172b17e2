"""The config groups as an ``lr-train`` user sees them: on the command line, in Hydra's spelling.

Three small jobs, all about what the user types (``group=option``, ``group.key=value``):

* :func:`check_unused_groups`: refuse a top-level node with a ``_target_`` that nothing builds
  (``lr-train +early_stop=patience`` with the yaml in a group of its own, or
  ``+lr_monitor._target_=...`` instead of ``+callbacks.lr_monitor._target_=...``), which would
  otherwise compose and silently do nothing. ``lr-train`` builds ``data``, ``model``,
  ``trainer``, ``logger`` and every entry of ``callbacks`` (the ``schedule``, ``lr_finder`` and
  ``snapshot`` entries point at the top-level groups by interpolation), nothing else.
* :func:`shipped_groups` and the ``lr_plugins.groups`` resolver: the groups that ship inside the
  package (``pkg://lr_plugins.conf``) with their options, for ``lr-train --help`` (Hydra's own
  list shows only the groups of the primary config's folder, not those of ``hydra.searchpath``).
* :func:`hydra_spelling`: a refusal worded for Python (``max_lr=None``, ``True or False``,
  ``Curve.__init__() got an unexpected keyword argument``) in the words the user typed
  (``schedule.max_lr=null``, ``true or false``, ``schedule.foo is not allowed``).

Example:
    >>> from omegaconf import OmegaConf
    >>> cfg = OmegaConf.create({"snapshot": {"_target_": "lr_plugins.SnapshotEnsemble", "in_memory": None}})
    >>> hydra_spelling("snapshot: TypeError: in_memory=None is not allowed: in_memory must be True or False.", cfg)
    'snapshot.in_memory=null is not allowed: snapshot.in_memory must be true or false.'
"""

from __future__ import annotations

import re
from importlib import resources

from omegaconf import DictConfig, OmegaConf

__all__ = ["BUILT", "check_unused_groups", "shipped_groups", "help_lines", "hydra_spelling"]

#: The top-level nodes ``lr-train`` builds; any other node is used only if one of these points at it.
BUILT = ("data", "model", "trainer", "logger", "callbacks")


# ---------------------------------------------------------------------- the shipped groups
def shipped_groups() -> dict[str, list[str]]:
    """``{group: [option, ...]}`` of the config groups inside the package (``lr_plugins/conf``).

    Example:
        >>> shipped_groups()["snapshot"]
        ['ensemble']
    """
    root = resources.files("lr_plugins.conf")
    groups = {}
    for entry in root.iterdir():
        if entry.is_dir():
            options = sorted(f.name[: -len(".yaml")] for f in entry.iterdir() if f.name.endswith(".yaml"))
            if options:
                groups[entry.name] = options
    return dict(sorted(groups.items()))


def help_lines() -> str:
    """The shipped groups as Hydra's help lists groups: ``group: option, option`` per line."""
    return "".join(f"{group}: {', '.join(options)}\n" for group, options in shipped_groups().items())


# ``lr-train --help``: the help template in conf/lr_train.yaml interpolates ${lr_plugins.groups:}.
OmegaConf.register_new_resolver("lr_plugins.groups", help_lines, replace=True)


# ---------------------------------------------------------------------- unused groups
def _references(cfg: DictConfig) -> str:
    """The unresolved text of every built node: where an interpolation may point at a group."""
    return "\n".join(OmegaConf.to_yaml(cfg[k]) for k in BUILT if isinstance(cfg.get(k), DictConfig))


def _points_at(text: str, key: str) -> bool:
    return re.search(r"\$\{(?:oc\.select:)?\s*" + re.escape(key) + r"(?=[.,}\s\[])", text) is not None


def check_unused_groups(cfg: DictConfig, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` (one line; lr-train passes its ``ConfigError``) for a top-level node with a
    ``_target_`` that nothing builds.

    A node is used when lr-train builds it (:data:`BUILT`) or when a built node interpolates it
    (``schedule: ${oc.select:schedule,null}`` in the ``callbacks`` group). The shipped groups
    (``schedule``, ``lr_finder``, ``snapshot``) are left alone under ``callbacks=none``, which
    means "no callbacks at all, not even the schedule".

    Example:
        >>> cfg = OmegaConf.create({"callbacks": {"schedule": "${oc.select:schedule,null}"},
        ...                         "schedule": {"_target_": "lr_plugins.SGDR"},
        ...                         "lr_monitor": {"_target_": "lightning.pytorch.callbacks.LearningRateMonitor"}})
        >>> try:
        ...     check_unused_groups(cfg)
        ... except Exception as e:
        ...     print(str(e)[:79])
        lr_monitor (_target_: lightning.pytorch.callbacks.LearningRateMonitor) is not a
    """
    text = _references(cfg)
    shipped = shipped_groups()
    no_callbacks = not cfg.get("callbacks")
    for key in cfg:
        key = str(key)
        # Public OmegaConf only: a missing (???) or interpolated node is no group of its own; reading
        # cfg[key] after that resolves nothing below it, and a null node reads None.
        if key in BUILT or OmegaConf.is_missing(cfg, key) or OmegaConf.is_interpolation(cfg, key):
            continue
        node = cfg[key]
        if not isinstance(node, DictConfig) or "_target_" not in node or _points_at(text, key) \
                or (key in shipped and no_callbacks):
            continue
        target = node["_target_"]
        if key in shipped:
            raise error(
                f"{key} (_target_: {target}) is not built: no entry of callbacks points at it, so it would do "
                f"nothing; keep default in the callbacks list ('callbacks=[default,...]', its entry "
                f"{key}: ${{oc.select:{key},null}} builds it) or drop it with ~{key}."
            )
        raise error(
            f"{key} (_target_: {target}) is not allowed at the top level: lr-train builds only "
            f"{', '.join(BUILT)} (every entry of callbacks), so it would do nothing; a callback goes in "
            f"callbacks: +callbacks.{key}._target_={target} on the command line, or a yaml "
            f"<config dir>/callbacks/{key}.yaml holding {key}: {{_target_: {target}}} and 'callbacks=[default,{key}]'."
        )


# ---------------------------------------------------------------------- messages in Hydra's spelling
_LITERALS = {"None": "null", "True": "true", "False": "false"}
# A quoted word is a value and stays as it is ('None' is a string); prose apostrophes are not quotes.
_PY_LITERAL = re.compile(r"'[^'\s]*'|\b(None|True|False)\b")
_UNEXPECTED = re.compile(r"[\w.]+\(\) got an unexpected keyword argument '(?P<arg>\w+)'")
_PREFIX = re.compile(r"(?P<key>[\w.]+): (?:(?:\w+Error|\w+Exception): )?(?P<rest>.*)", re.S)


def hydra_spelling(message: str, cfg: DictConfig | None = None) -> str:
    """``message`` with Python spellings made the ones a Hydra command line uses.

    * ``None``, ``True``, ``False`` (not inside quotes) become ``null``, ``true``, ``false``;
    * in a ``<node>: <Error>: ...`` message about a node of ``cfg`` (``schedule``, ``model``,
      ``callbacks.x``), the node's own keys written ``key=`` or ``key must`` get the node's
      prefix (``max_lr=`` -> ``schedule.max_lr=``), and the ``<node>: <Error>:`` prefix goes
      once the message starts with the full key; ``X.__init__() got an unexpected keyword
      argument 'foo'`` becomes ``<node>.foo is not allowed: no such key``.

    Example:
        >>> hydra_spelling("test=None is not allowed: test must be true or false.")
        'test=null is not allowed: test must be true or false.'
    """
    text = _PY_LITERAL.sub(lambda m: _LITERALS[m[1]] if m[1] else m[0], message)
    match = _PREFIX.fullmatch(text)
    if match is None or cfg is None:
        return text
    node = OmegaConf.select(cfg, match["key"], default=None)
    if not isinstance(node, DictConfig):
        return text
    key, rest = match["key"], match["rest"]
    rest = _UNEXPECTED.sub(lambda m: f"{key}.{m['arg']} is not allowed: no such key", rest)
    names = "|".join(re.escape(str(k)) for k in node if re.fullmatch(r"\w+", str(k)))
    if names:
        rest = re.sub(rf"(?<![\w.])({names})(?==| must)", rf"{key}.\1", rest)
    return rest if rest.startswith(f"{key}.") else text[: match.start("rest")] + rest
