"""lr-plugins' config groups in a user's own Hydra app (issue 13.1, 13.3).

Nothing is injected: an app that does not ask composes as if lr-plugins were not installed. An
app asks with one line in its primary config, `hydra: {searchpath: [pkg://lr_plugins.conf]}`,
and then every shipped group builds with a plain `hydra.utils.instantiate`.

The wheel tests build the wheel with `python -m build --wheel` and install it with
`pip install --no-deps` into a fresh venv that sees the test environment's dependencies (torch,
Lightning, Hydra) through a .pth path entry, so nothing is downloaded. That path entry does not
run the editable install's hook, so `lr_plugins` comes from the wheel only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

APP = textwrap.dedent(
    """
    import hydra, lr_plugins
    from hydra.utils import instantiate

    @hydra.main(config_path="conf", config_name="config", version_base="1.3")
    def main(cfg):
        cb = instantiate(cfg.schedule)
        print("CLASS", type(cb).__name__, "MAX_LR", cb.max_lr, "LR2", cb.lr_at(2, total_steps=10, steps_per_epoch=2))
        print("FROM", lr_plugins.__file__)

    main()
    """
)


# The one documented line (two in block style) that gives an app the groups.
ASKING_CONFIG = "defaults:\n  - schedule: sgdr\n  - _self_\nhydra:\n  searchpath: [pkg://lr_plugins.conf]\n"

UNRELATED_APP = textwrap.dedent(
    """
    import hydra
    from omegaconf import OmegaConf

    @hydra.main(config_path="conf", config_name="config", version_base="1.3")
    def main(cfg):
        print("CFG", OmegaConf.to_yaml(cfg).replace("\\n", " | "))

    main()
    """
)


def _run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kw)


# ---------------------------------------------------------------------- no injection (13.3)
def test_unrelated_app_composes_as_if_lr_plugins_were_absent(tmp_path):
    """An app with its own `schedule` group and no step.yaml: `schedule=step` is Hydra's normal
    "could not find" error (the SearchPathPlugin used to compose lr_plugins.StepDecay in), and
    the group lists only the app's own options."""
    conf = tmp_path / "conf"
    (conf / "schedule").mkdir(parents=True)
    (conf / "config.yaml").write_text("defaults:\n  - schedule: linear\n  - _self_\n")
    (conf / "schedule" / "linear.yaml").write_text("kind: linear\nsteps: 3\n")
    (conf / "schedule" / "cosine.yaml").write_text("kind: cosine\nsteps: 5\n")
    (tmp_path / "app.py").write_text(UNRELATED_APP)
    py = [sys.executable, "app.py", "hydra.run.dir=out"]
    own = _run([*py, "schedule=cosine"], cwd=tmp_path)
    assert own.returncode == 0, own.stderr[-3000:]
    assert "CFG schedule: |   kind: cosine |   steps: 5 |" in own.stdout
    missing = _run([*py, "schedule=step"], cwd=tmp_path)
    assert missing.returncode == 1
    assert "Could not find 'schedule/step'" in missing.stderr
    assert "Available options in 'schedule':\n\tcosine\n\tlinear" in missing.stderr
    assert "lr_plugins" not in missing.stderr + missing.stdout
    search = _run([*py, "--info", "searchpath"], cwd=tmp_path)
    assert search.returncode == 0 and "lr_plugins" not in search.stdout, search.stdout[-3000:]


def test_lr_train_asks_for_the_groups_itself():
    import yaml

    from lr_plugins.app.train import config_dir

    primary = yaml.safe_load((Path(config_dir()) / "lr_train.yaml").read_text())
    assert primary["hydra"]["searchpath"] == ["pkg://lr_plugins.conf"]


# ---------------------------------------------------------------------- every group anywhere (13.1)
def _shipped() -> list[tuple[str, str]]:
    import lr_plugins

    root = Path(lr_plugins.__file__).parent / "conf"
    return [(g, p.stem) for g in ("schedule", "lr_finder", "snapshot") for p in sorted((root / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), _shipped(), ids=[f"{g}={o}" for g, o in _shipped()])
def test_every_shipped_group_instantiates_in_a_foreign_app(tmp_path, group, option):
    """A foreign primary config with only the asking line; a plain `instantiate` of the group
    gives the class its `_target_` names, configured as the composed option says. (lr_finder:
    fails until LRFinder takes the yaml's app-only `exit` key as a constructor argument, 13.1.)"""
    from hydra import compose, initialize_config_dir
    from hydra.utils import get_class, instantiate
    from omegaconf import OmegaConf

    (tmp_path / "config.yaml").write_text("hydra:\n  searchpath: [pkg://lr_plugins.conf]\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+{group}={option}"])
    obj = instantiate(cfg[group])
    composed = OmegaConf.to_container(cfg[group], resolve=True)
    assert type(obj) is get_class(composed.pop("_target_"))
    for key, value in composed.items():
        if hasattr(obj, key) and not callable(getattr(obj, key)) and isinstance(value, (int, float, str, bool)):
            assert getattr(obj, key) == value, f"{group}={option}: {key}"


# ---------------------------------------------------------------------- from an installed wheel
@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    build = _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
                  "--outdir", str(tmp / "dist"), str(ROOT)], cwd=tmp)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("lr_plugins-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).stdout.strip())
    (site / "_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], cwd=tmp)
    assert pip.returncode == 0, pip.stderr[-2000:]
    app = tmp / "my_app"
    (app / "conf").mkdir(parents=True)
    (app / "app.py").write_text(APP)
    (app / "conf" / "config.yaml").write_text(ASKING_CONFIG)
    return {"py": py, "app": app, "site": site, "bin": env_dir / "bin"}


@pytest.mark.slow  # builds a wheel and a venv: ~30 s idle, more on a busy machine
def test_wheel_ships_configs(wheel_env):
    site = wheel_env["site"]
    assert (site / "lr_plugins" / "conf" / "schedule" / "sgdr.yaml").is_file()
    assert (site / "lr_plugins" / "app" / "_conf" / "lr_train.yaml").is_file()
    assert not (site / "hydra_plugins").exists()  # no SearchPathPlugin reaching every app


@pytest.mark.slow
def test_third_party_app_instantiates_packaged_schedule(wheel_env):
    proc = _run([str(wheel_env["py"]), "app.py", "schedule.unit=epoch", "schedule.cycle_length=4", "schedule.max_lr=0.2",
                 "hydra.run.dir=out"], cwd=wheel_env["app"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    # SGDR, T_0 = 4 epochs, 2 steps/epoch: step 2 is 1 epoch in, 0.2 * (1 + cos(pi/4)) / 2.
    assert "CLASS SGDR MAX_LR 0.2 LR2 0.1707106781" in proc.stdout
    assert f"FROM {wheel_env['site']}" in proc.stdout  # the wheel, not the source tree
    other = _run([str(wheel_env["py"]), "app.py", "schedule=onecycle", "hydra.run.dir=out"], cwd=wheel_env["app"])
    assert other.returncode == 0 and "CLASS OneCycle" in other.stdout, other.stderr[-3000:]


@pytest.mark.slow
def test_third_party_app_rejects_bad_value(wheel_env):
    proc = _run([str(wheel_env["py"]), "app.py", "schedule.max_lr=abc", "hydra.run.dir=out"], cwd=wheel_env["app"])
    assert proc.returncode != 0
    assert "max_lr='abc' is not allowed" in proc.stderr


@pytest.mark.slow
def test_lr_train_runs_from_the_wheel(wheel_env, tmp_path):
    proc = _run([str(wheel_env["bin"] / "lr-train"), "data=digits", "model=mlp", "trainer.max_epochs=1",
                 "schedule=constant", "trainer.enable_progress_bar=false", "hydra.run.dir=run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "result.json").is_file()
    assert "test/acc" in proc.stdout
