"""Every ```python block of README.md and docs/**/*.md runs, as written (issue 14.4).

Each page is one test: its python blocks run in order in one namespace (a later block may use
what an earlier one defined), in a fresh temporary working directory, with the module name
``docs_page`` (so ``if __name__ == "__main__":`` parts are compiled but not run, as in an
imported module). A traceback points at the page and line of the block.

Opting out: a block that truly cannot run here (it needs a GPU, a cluster or a user's own
package) is preceded by the line ``<!-- docs-test: skip (the reason) -->``. Opt-outs must stay
rare: ``MAX_SKIPS`` for the whole site. ```bash, ```yaml and ```text blocks are never run.

The page set is found on disk, so a new page is tested without being listed here.
"""

from __future__ import annotations

import ast
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"\s*<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->\s*")  # a line of its own
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
MAX_SKIPS = 5
PAGE_SECONDS = 60  # a page's blocks together; they should take a few seconds


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the first code line
    lang: str
    code: str
    skip: str | None  # the reason, when opted out


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page (indented fences too, e.g. inside a list item)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m["indent"], m["fence"], m["lang"].lower()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        body = [ln[len(indent):] if ln.startswith(indent) else ln.lstrip() for ln in lines[start:j]]
        before = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        skip = SKIP.fullmatch(before)
        found.append(Block(page, start + 1, lang, "\n".join(body) + "\n", skip["reason"] if skip else None))
        i = j + 1
    return found


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_pages() -> list[Path]:
    return [p for p in pages() if any(b.lang in ("python", "py") for b in blocks(p))]


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", python_pages(), ids=_id)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("LR_PLUGINS_CACHE", os.environ.get("LR_PLUGINS_CACHE", str(tmp_path / "cache")))
    namespace: dict[str, object] = {"__name__": "docs_page"}
    started = time.perf_counter()
    ran = 0
    for block in blocks(page):
        if block.lang not in ("python", "py") or block.skip:
            continue
        code = compile(block.code, f"{_id(page)}:{block.line}", "exec")
        exec(code, namespace)  # the page's own code, as a reader would paste it
        ran += 1
    assert ran > 0
    seconds = time.perf_counter() - started
    assert seconds < PAGE_SECONDS, f"{_id(page)}: its python blocks took {seconds:.0f} s; keep docs examples fast"


def test_opt_outs_are_rare_and_say_why() -> None:
    skipped = [b for p in pages() for b in blocks(p) if b.skip]
    assert len(skipped) <= MAX_SKIPS, [f"{_id(b.page)}:{b.line} ({b.skip})" for b in skipped]
    for page in pages():  # a marker that is not right before a python block does nothing: refuse it
        lines = page.read_text(encoding="utf-8").splitlines()
        markers = [ln for ln in lines if ln.strip().startswith("<!-- docs-test")]
        assert all(SKIP.fullmatch(ln) for ln in markers), f"{_id(page)}: malformed marker in {markers}"
        used = sum(1 for b in blocks(page) if b.skip and b.lang in ("python", "py"))
        assert len(markers) == used, f"{_id(page)}: a docs-test skip marker must stand right before a ```python block"


def test_the_block_parser_finds_code_where_a_reader_sees_it(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```python\nx = 1\n```\n- item\n\n  ```python\n  y = x + 1\n  ```\n"
        "<!-- docs-test: skip (needs a GPU) -->\n```python\nraise SystemExit\n```\n```bash\nrm -rf /\n```\n"
    )
    found = blocks(page)
    assert [(b.lang, b.line, b.code, b.skip) for b in found] == [
        ("python", 3, "x = 1\n", None),
        ("python", 8, "y = x + 1\n", None),
        ("python", 12, "raise SystemExit\n", "needs a GPU"),
        ("bash", 15, "rm -rf /\n", None),
    ]


def test_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 400
    commands = next(b for b in blocks(ROOT / "README.md") if b.lang == "bash").code.strip().splitlines()
    assert len(commands) == 2, commands  # exactly two commands at the top: run lr-train, run the tests
    assert commands[0].endswith("lr-train") and '".[app]"' in commands[0]
    assert commands[1].endswith("pytest") and '".[test]"' in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci, "job 1 of .ci/run must be the README's test command"
    for use in ("LightningModule", "hydra.searchpath: [pkg://lr_plugins.conf]", "lr-train -m"):
        assert use in readme, use


def test_every_docs_page_is_in_the_nav() -> None:
    def entries(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [e for v in node.values() for e in entries(v)]
        if isinstance(node, list):
            return [e for v in node for e in entries(v)]
        return []

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = set(entries(config["nav"]))
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk - nav == set(), "pages missing from mkdocs.yml's nav"


def _readme_section(title: str) -> list[Block]:
    """The blocks of the README section whose heading starts with ``title``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n### {title}")
    after = re.search(r"\n#{2,3} ", text[start + 1:])  # the next heading (## or ###; "# comment" lines of blocks are not)
    end = start + 1 + after.start() if after else -1
    first = text[:start].count("\n") + 1
    last = text[:end].count("\n") + 1 if end != -1 else len(text.splitlines())
    return [b for b in blocks(ROOT / "README.md") if first <= b.line <= last]


def _command_overrides(line: str, program: str) -> list[list[str]]:
    """Every job of a README command line: its overrides, with ``-m`` comma lists expanded."""
    import itertools
    import shlex

    words = shlex.split(line.split("#")[0])
    assert words[: len(program.split())] == program.split(), line
    args = [w for w in words[len(program.split()):] if w != "-m"]
    choices = [[f"{a.split('=', 1)[0]}={v}" for v in a.split("=", 1)[1].split(",")] if "-m" in words else [a] for a in args]
    return [list(job) for job in itertools.product(*choices)]


# What the README's own app leaves to the reader (`MyModule`, `MyDataModule`), and a line that
# reports which callbacks the README's train.py built, with their peak.
_OWN_APP_PRELUDE = """\
import lightning.pytorch as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class MyModule(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 3)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def on_fit_end(self):
        built = [(type(c).__name__, getattr(c, "max_lr", None)) for c in self.trainer.callbacks
                 if type(c).__module__.startswith("lr_plugins")]
        print("BUILT", sorted(built, key=str))


class MyDataModule(L.LightningDataModule):
    def _loader(self, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(16, 4, generator=g)
        return DataLoader(TensorDataset(x, x[:, :3].argmax(1)), batch_size=8)

    def train_dataloader(self):
        return self._loader(0)

    def val_dataloader(self):
        return self._loader(1)


"""


def _own_app(tmp_path: Path) -> tuple[Path, list[str]]:
    """Everyday use 2 as a reader builds it: the README's conf/config.yaml and train.py, verbatim."""
    section = _readme_section("2.")
    config = next(b.code for b in section if b.lang == "yaml" and b.code.startswith("# conf/config.yaml"))
    script = next(b.code for b in section if b.lang == "python" and b.code.startswith("# train.py"))
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(config)
    (tmp_path / "train.py").write_text(_OWN_APP_PRELUDE + script)
    lines = [ln.split("#")[0].strip() for b in section if b.lang == "bash" for ln in b.code.splitlines()
             if ln.startswith("python train.py")]
    return tmp_path, lines


def _run_own_app(app: Path, line: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``line`` (``python train.py ...``) run in this process, as Hydra runs it; its stdout."""
    import contextlib
    import io
    import logging
    import runpy
    import shlex
    import sys

    monkeypatch.chdir(app)
    monkeypatch.setattr(sys, "argv", shlex.split(line)[1:])
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(app / "train.py"), run_name="__main__")  # `python train.py`
    finally:  # Hydra configures the root logger for its run: put it back
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(level)
    return out.getvalue()


# Each README command line, and the lr-plugins callbacks (class, max_lr) each of its jobs builds.
_OWN_APP_BUILDS = {
    "python train.py schedule=clr schedule.max_lr=0.05": [[("CyclicLR", 0.05)]],
    "python train.py -m schedule=sgdr,onecycle": [[("SGDR", None)], [("OneCycle", None)]],
    "python train.py lr_finder=steepest snapshot=ensemble": [[("LRFinder", 10.0), ("SGDR", "pick"), ("SnapshotEnsemble", None)]],
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("line", list(_OWN_APP_BUILDS))
def test_readme_own_app_runs_each_command(tmp_path: Path, line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Everyday use 2 as a real Hydra app: the README's config and train.py, run (in this process,
    by its @hydra.main) with each of its command lines; every group the line names is built
    (lr_finder=steepest too, issue 19.4) and trains."""
    app, lines = _own_app(tmp_path)
    assert lines == list(_OWN_APP_BUILDS), "the README's commands changed: update _OWN_APP_BUILDS"
    stdout = _run_own_app(app, line, monkeypatch)
    built = [ast.literal_eval(ln[len("BUILT "):]) for ln in stdout.splitlines() if ln.startswith("BUILT ")]
    expected = _OWN_APP_BUILDS[line]
    assert len(built) == len(expected), stdout[-2000:]
    for job, want in zip(built, expected):
        assert [name for name, _ in job] == [name for name, _ in want]
        for (name, got), (_, peak) in zip(job, want):
            if peak == "pick":  # the finder's pick became the schedule's peak (not the optimizer's lr)
                assert isinstance(got, float) and got > 0 and got != 0.1, job
            else:
                assert got == peak, job


def test_readme_own_app_says_what_a_group_without_its_line_does(tmp_path: Path) -> None:
    """The README's warning is true: `+lr_finder=steepest` on a config without the group's line
    composes a node the app never builds; with the README's lines Hydra refuses the `+`."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    app, _ = _own_app(tmp_path)
    config = (app / "conf" / "config.yaml").read_text()
    assert "  - lr_finder: null" in config and "  - snapshot: null" in config
    with initialize_config_dir(config_dir=str(app / "conf"), version_base="1.3"):
        with pytest.raises(ConfigCompositionException, match="Multiple values for lr_finder"):
            compose(config_name="config", overrides=["+lr_finder=steepest"])
        (app / "conf" / "schedule_only.yaml").write_text(config.replace("  - lr_finder: null", ""))
        with pytest.raises(ConfigCompositionException, match="Could not override 'lr_finder'"):
            compose(config_name="schedule_only", overrides=["lr_finder=steepest"])
        cfg = compose(config_name="schedule_only", overrides=["+lr_finder=steepest"])
    assert "lr_finder" in cfg  # composed, and the README's train.py would build it: not so an app without the line


@pytest.mark.timeout(300)
def test_readme_sweeps_are_valid_lr_train_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Everyday use 3: every job of every `lr-train -m` line passes lr-train's own validation."""
    from lr_plugins.app.preview import compose_config
    from lr_plugins.app.validate import validate

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LR_PLUGINS_CACHE", os.environ.get("LR_PLUGINS_CACHE", str(tmp_path / "cache")))
    lines = [ln for b in _readme_section("3.") if b.lang == "bash" for ln in b.code.splitlines() if ln.startswith("lr-train")]
    assert len(lines) == 3 and all(ln.startswith("lr-train -m ") for ln in lines), lines
    jobs = [job for ln in lines for job in _command_overrides(ln, "lr-train")]
    assert len(jobs) == 4 + 4 + 3
    for job in jobs:
        validate(compose_config(job))  # raises ConfigError naming the key on a stale command


def test_readme_template_recipe_is_the_guides(tmp_path: Path) -> None:
    """The README's lightning-hydra-template lines are the guide's, which test_template_app runs."""
    guide = ROOT / "docs" / "guide" / "your-project.md"
    if not guide.exists():
        pytest.skip("docs/guide/your-project.md comes with the hydra-app branch")
    in_guide = {b.code for b in blocks(guide) if b.lang in ("yaml", "bash")}
    section = _readme_section("2.")
    marks = ("lr-plugins:", "oc.select", "src/train.py")  # the defaults lines, callbacks entries, commands
    recipe = [b.code for b in section if any(m in b.code for m in marks) or b.code.startswith("hydra:")]
    assert len(recipe) == 4, recipe
    for code in recipe:
        assert code in in_guide, code


def _paragraphs(page: Path) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", page.read_text(encoding="utf-8")) if p.strip()]


def test_the_default_runs_time_is_one_figure_everywhere() -> None:
    """Issue 19.4: the README gives the default `lr-train` run's time once (about N s, M s
    measured); every paragraph of the docs about the default run's whole-command time agrees.
    A run with another setup must say so (one torch thread: OMP_NUM_THREADS=1); pages a
    benchmark writes (`do not edit`) carry their own setup line."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    about, measured = re.search(r"about (\d+) s on 2 CPU cores \((\d+(?:\.\d+)?) s for\s+the whole command", readme).groups()
    trigger = re.compile(r"default job|with no arguments|whole command|/usr/bin/time[^`]*lr-train", re.I)
    seconds = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:[-–]\d+(?:\.\d+)?)?) s\b")
    seen = []
    for page in pages():
        if "do not edit" in page.read_text(encoding="utf-8")[:300]:
            continue
        for paragraph in _paragraphs(page):
            if not trigger.search(paragraph) or "OMP_NUM_THREADS=1" in paragraph:
                continue
            for figure in seconds.findall(paragraph):
                seen.append(figure)
                assert figure in (about, measured), f"{_id(page)}: {figure} s for the default run; the README says {about} s ({measured} s): {paragraph[:300]}"
    assert about in seen and measured in seen


def test_the_cpu_wheel_commands_install_the_tested_torch() -> None:
    """Issue 19.4: the README says how to get torch's CPU build; its command is the README's first
    command with the CPU wheel step before the install, and pins constraints.txt's torch."""
    pin = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M).group(1)
    first = next(b for b in blocks(ROOT / "README.md") if b.lang == "bash").code.strip().splitlines()[0]
    step = f"pip install torch=={pin} --index-url https://download.pytorch.org/whl/cpu"
    cpu_line = next(ln for b in blocks(ROOT / "README.md") if b.lang == "bash" for ln in b.code.splitlines() if "whl/cpu" in ln)
    assert cpu_line == first.replace(" && pip install -c constraints.txt", f" && {step} && pip install -c constraints.txt")
    assert f"`{step}`" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
