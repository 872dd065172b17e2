"""lr_plugins.app.groups: the config groups as an lr-train user types them (issue 19.4).

* ``lr-train --help`` lists the groups that come from ``pkg://lr_plugins.conf`` (the guide says
  it does; Hydra's own list shows only the primary config's folder), checked against the yaml
  files on disk, in a real ``lr-train --help`` subprocess;
* a top-level node with a ``_target_`` that nothing builds is refused before any step (exit 2,
  one line naming it and the right spelling), where it used to compose and do nothing;
* refusals are worded in Hydra's spelling (``snapshot.in_memory=null``, ``true or false``), not
  Python's (``in_memory=None``, ``True or False``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest
from omegaconf import MISSING, OmegaConf

from lr_plugins.app.groups import check_unused_groups, hydra_spelling
from lr_plugins.app.preview import compose_config
from lr_plugins.app.validate import ConfigError, validate

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["data=digits", "model=mlp", "trainer.max_epochs=1"]


def lr_train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "lr_plugins.app.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------------- lr-train --help
def test_help_lists_the_packaged_groups_and_their_options(tmp_path):
    proc = lr_train(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    for group in ("schedule", "lr_finder", "snapshot"):
        options = sorted(p.stem for p in (ROOT / "lr_plugins" / "conf" / group).glob("*.yaml"))
        assert options, group
        assert f"{group}: {', '.join(options)}" in lines, proc.stdout[:2000]
    assert "model: cnn, mlp" in lines  # Hydra's own list is still there
    assert "schedule:\n  _target_: lr_plugins.WarmupCosine" in proc.stdout  # and the composed config
    assert not (tmp_path / "outputs").exists()  # --help runs nothing


# ---------------------------------------------------------------------- unused groups
def test_a_top_level_callback_that_nothing_builds_is_refused_before_training(tmp_path):
    """`+lr_monitor._target_=...` (meant: `+callbacks.lr_monitor._target_=...`) used to compose a
    node nothing builds and train without it; now exit 2 with the right spelling, nothing run."""
    target = "lightning.pytorch.callbacks.LearningRateMonitor"
    proc = lr_train([*SMALL, f"+lr_monitor._target_={target}", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("lr-train:")]
    assert f"lr_monitor (_target_: {target}) is not allowed at the top level" in line
    assert f"+callbacks.lr_monitor._target_={target}" in line
    assert not (tmp_path / "run" / "result.json").exists()
    validate(compose_config([*SMALL, f"+callbacks.lr_monitor._target_={target}"]))  # the spelling it gives works


def test_a_packaged_group_no_callbacks_entry_builds_is_refused_unless_callbacks_none():
    with pytest.raises(ConfigError, match=r"^schedule \(_target_: lr_plugins.SGDR\) is not built: .* ~schedule\.$"):
        validate(compose_config([*SMALL, "schedule=sgdr", "callbacks=[model_checkpoint]"]))
    validate(compose_config([*SMALL, "schedule=sgdr", "callbacks=[default,lr_monitor]"]))
    validate(compose_config([*SMALL, "callbacks=none"]))  # "no callbacks at all, not even the schedule"


def test_a_node_a_built_node_interpolates_is_used():
    cfg = OmegaConf.create({
        "model": {"_target_": "my.Model", "net": "${net}"},
        "net": {"_target_": "my.Net"},
        "callbacks": {"stop": "${oc.select:early_stop,null}"},
        "early_stop": {"_target_": "lightning.pytorch.callbacks.EarlyStopping"},
        "paths": {"out": "x"},  # no _target_: plain values
    })
    check_unused_groups(cfg)
    cfg.extra = {"_target_": "my.Thing"}
    with pytest.raises(ValueError, match=r"^extra \(_target_: my.Thing\) is not allowed at the top level"):
        check_unused_groups(cfg)


@dataclass
class _Typed:
    """A structured config: its dict nodes are typed, so ``???``, null and interpolations stay dict nodes."""

    callbacks: dict[str, Any] = field(default_factory=lambda: {"stop": "${oc.select:early_stop,null}"})
    early_stop: dict[str, Any] = field(default_factory=lambda: {"_target_": "my.Stop"})
    alias: dict[str, Any] = "${early_stop}"  # type: ignore[assignment] - a typed node holding an interpolation
    later: dict[str, Any] = MISSING
    off: Optional[dict[str, Any]] = None  # noqa: UP045 - OmegaConf 2.3 reads typing.Optional
    scalar: str = "${early_stop._target_}"


def test_missing_null_and_interpolated_dict_nodes_are_no_groups_of_their_own():
    """Typed dict nodes that are ``???``, null or an interpolation are skipped, as they were when
    check_unused_groups read OmegaConf's private node API; a real one is still refused."""
    cfg = OmegaConf.structured(_Typed)
    check_unused_groups(cfg)
    cfg.off = {"_target_": "my.Thing"}
    with pytest.raises(ValueError, match=r"^off \(_target_: my.Thing\) is not allowed at the top level"):
        check_unused_groups(cfg)


# ---------------------------------------------------------------------- Hydra's spelling
def test_a_refusal_names_the_key_as_typed_with_hydras_literals(tmp_path):
    proc = lr_train([*SMALL, "schedule=sgdr", "snapshot=ensemble", "snapshot.in_memory=null", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("lr-train:")]
    assert line.endswith("snapshot.in_memory=null is not allowed: snapshot.in_memory must be true or false."), line
    assert not {"None", "True", "False", "TypeError"} & set(line.replace(".", " ").split()), line


def test_hydra_spelling_keeps_quoted_values_and_prose():
    cfg = OmegaConf.create({"schedule": {"_target_": "lr_plugins.SGDR", "cycle_length": None, "unit": "epoch"}})
    assert hydra_spelling("schedule: ValueError: unit='None' is not allowed: unit must be one of 'epoch', 'step'.", cfg) == (
        "schedule.unit='None' is not allowed: schedule.unit must be one of 'epoch', 'step'.")
    assert hydra_spelling("schedule: TypeError: SGDR.__init__() got an unexpected keyword argument 'hlod'; allowed keys "
                          "of schedule (lr_plugins.SGDR): cycle_length", cfg) == (
        "schedule.hlod is not allowed: no such key; allowed keys of schedule (lr_plugins.SGDR): cycle_length")
    # not a node of the config: only the literals change; a prose apostrophe is not a quote
    assert hydra_spelling("trainer: the optimizer's lr is None, and the module's True") == (
        "trainer: the optimizer's lr is null, and the module's true")


def test_docstring_examples():
    import doctest

    import lr_plugins.app.groups as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
