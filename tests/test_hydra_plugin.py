"""The packaged `schedule` group in a user's own Hydra app, from a built and installed wheel.

The wheel is built with `python -m build --wheel` and installed with `pip install --no-deps` into
a fresh venv that sees the test environment's dependencies (torch, Lightning, Hydra) through a
.pth path entry, so nothing is downloaded. That path entry does not run the editable install's
hook, so `lr_plugins` and `hydra_plugins/lr_plugins_searchpath` come from the wheel only.
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

pytestmark = pytest.mark.slow  # builds a wheel and a venv: ~30 s idle, more on a busy machine

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


def _run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kw)


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
    (app / "conf" / "config.yaml").write_text("defaults:\n  - schedule: sgdr\n  - _self_\n")
    return {"py": py, "app": app, "site": site, "bin": env_dir / "bin"}


def test_wheel_ships_configs(wheel_env):
    site = wheel_env["site"]
    assert (site / "lr_plugins" / "conf" / "schedule" / "sgdr.yaml").is_file()
    assert (site / "lr_plugins" / "app" / "_conf" / "lr_train.yaml").is_file()
    assert (site / "hydra_plugins" / "lr_plugins_searchpath" / "lr_plugins_searchpath.py").is_file()


def test_third_party_app_instantiates_packaged_schedule(wheel_env):
    proc = _run([str(wheel_env["py"]), "app.py", "schedule.unit=epoch", "schedule.cycle_length=4", "schedule.max_lr=0.2",
                 "hydra.run.dir=out"], cwd=wheel_env["app"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    # SGDR, T_0 = 4 epochs, 2 steps/epoch: step 2 is 1 epoch in, 0.2 * (1 + cos(pi/4)) / 2.
    assert "CLASS SGDR MAX_LR 0.2 LR2 0.1707106781" in proc.stdout
    assert f"FROM {wheel_env['site']}" in proc.stdout  # the wheel, not the source tree
    other = _run([str(wheel_env["py"]), "app.py", "schedule=onecycle", "hydra.run.dir=out"], cwd=wheel_env["app"])
    assert other.returncode == 0 and "CLASS OneCycle" in other.stdout, other.stderr[-3000:]


def test_third_party_app_rejects_bad_value(wheel_env):
    proc = _run([str(wheel_env["py"]), "app.py", "schedule.max_lr=abc", "hydra.run.dir=out"], cwd=wheel_env["app"])
    assert proc.returncode != 0
    assert "max_lr='abc' is not allowed" in proc.stderr


def test_lr_train_runs_from_the_wheel(wheel_env, tmp_path):
    proc = _run([str(wheel_env["bin"] / "lr-train"), "data=digits", "model=mlp", "trainer.max_epochs=1",
                 "schedule=constant", "trainer.enable_progress_bar=false", "hydra.run.dir=run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "result.json").is_file()
    assert "test/acc" in proc.stdout
