"""Type checkers see the public API: mypy passes a typed user's code and reports their mistakes.

``user_snippet.py`` must type-check (that alone fails if ``lr_plugins``' names were ``Any`` or
missing to mypy: the snippet annotates the values it gets back). Each mistake below is a copy of
a line a user could write; mypy must report it on that line. mypy follows the package's imports
silently, as it does for an installed library, so only the user's code is judged here; the
package itself is checked by the ``types`` step of ``.ci/run`` (``mypy`` with pyproject's config).

A cold mypy run analyses torch and Lightning (about a minute on 2 cores), hence ``slow``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is in the lint extra: pip install -e '.[lint]'")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = Path(__file__).with_name("user_snippet.py")


def _mypy(*files: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
           "--cache-dir", str(ROOT / ".mypy_cache"), "--config-file", str(ROOT / "pyproject.toml"),
           *map(str, files)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_typed_user_snippet_passes() -> None:
    out = _mypy(SNIPPET)
    assert out.returncode == 0, out.stdout + out.stderr


MISTAKES = {
    # a misspelled required argument: reported as unexpected, with the right name suggested
    "typo_required": ("from lr_plugins import SGDR\nSGDR(cycle_lenght=2)\n", 'did you mean "cycle_length"'),
    "typo_finder": ("from lr_plugins import LRFinder\nLRFinder(num_step=10)\n", '"num_step"'),
    "typo_snapshot": ("from lr_plugins import SnapshotEnsemble\nSnapshotEnsemble(kep=3)\n", '"kep"'),
    "wrong_type": ("from lr_plugins import WarmupCosine\nWarmupCosine(hold='1')\n", '"hold"'),
    "wrong_return": ("from lr_plugins import SGDR\nx: str = SGDR(cycle_length=2).lr_at(3)\n", "Incompatible types"),
    "unknown_name": ("from lr_plugins import SGDRR\n", "SGDRR"),
    # the schedules' optional and shared arguments and the callback options are typed too
    "typo_optional": ("from lr_plugins import SGDR\nSGDR(cycle_length=2, cycle_mutl=2)\n", '"cycle_mutl"'),
    "typo_shared": ("from lr_plugins import OneCycle\nOneCycle(max_Lr=0.1)\n", 'did you mean "max_lr"'),
    "typo_momentum": ("from lr_plugins import CyclicLR\nCyclicLR(step_size=2, base_momentm=0.8)\n", '"base_momentm"'),
    "typo_option": ("from lr_plugins import Constant\nConstant(replace_scheduler=True)\n", '"replace_scheduler"'),
    "wrong_shared_type": ("from lr_plugins import StepDecay\nStepDecay(step_size=2, warmup='1')\n", '"warmup"'),
    "missing_required": ("from lr_plugins import ExponentialDecay\nExponentialDecay(max_lr=0.1)\n",
                         'Missing named argument "rate"'),
    "typo_curve": ("from lr_plugins.schedules import SGDRCurve\nSGDRCurve(cycle_length=2, min_Lr=0.0)\n", '"min_Lr"'),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """mypy's report on every mistake file, one run for all (each file is checked on its own merits)."""
    folder = tmp_path_factory.mktemp("mistakes")
    files = []
    for name, (code, _) in MISTAKES.items():
        files.append(folder / f"{name}.py")
        files[-1].write_text(code)
    out = _mypy(*files)
    assert out.returncode == 1, out.stdout + out.stderr
    # By file name, not path: mypy's cache replays an unchanged module's report under the path it
    # had in an earlier session (each session's tmp folder differs).
    return {name: "\n".join(line for line in out.stdout.splitlines() if f"/{name}.py:" in line) for name in MISTAKES}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_a_mistake_is_reported_on_its_line(reports: dict[str, str], name: str) -> None:
    code, expected = MISTAKES[name]
    report = reports[name]
    last_line = len(code.splitlines())
    assert f"{name}.py:{last_line}: error:" in report, report
    assert expected in report, report
