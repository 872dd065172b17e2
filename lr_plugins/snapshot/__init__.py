"""Snapshot ensembling (Huang et al., 2017): save at every cycle end, average the snapshots.

* :class:`SnapshotEnsemble`: the callback (saving, ensemble evaluation, resume);
* :func:`load_ensemble` / :class:`EnsembleModule`: inference from a snapshot folder;
* :mod:`~lr_plugins.snapshot.store`: the file format; :mod:`~lr_plugins.snapshot.evaluate`:
  ensemble metrics.

Example:
    >>> from lr_plugins import SGDR, SnapshotEnsemble
    >>> callbacks = [SGDR(max_lr=0.1, cycle_length=5), SnapshotEnsemble(keep=4)]
"""

from lr_plugins.snapshot.callback import SnapshotEnsemble
from lr_plugins.snapshot.ensemble import EnsembleModule, load_ensemble
from lr_plugins.snapshot.evaluate import evaluate_ensemble
from lr_plugins.snapshot.store import list_snapshots, load_snapshot, save_snapshot

__all__ = [
    "SnapshotEnsemble",
    "EnsembleModule",
    "load_ensemble",
    "evaluate_ensemble",
    "list_snapshots",
    "load_snapshot",
    "save_snapshot",
]
