"""The schedules guide's code runs, in order, and prints what its ```text blocks say."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "schedules.md"


def _blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w+)\n(.*?)^```", text, flags=re.S | re.M)


def test_guide_python_blocks_run_and_print_the_text_that_follows(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    blocks = _blocks(GUIDE.read_text())
    assert sum(lang == "python" for lang, _ in blocks) >= 6
    namespace: dict = {"__name__": "__guide__"}
    for i, (lang, code) in enumerate(blocks):
        if lang != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{GUIDE.name}[block {i}]", "exec"), namespace)
        following = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
        if following[0] == "text":
            assert out.getvalue() == following[1], f"block {i} printed {out.getvalue()!r}"
    assert (tmp_path / "onecycle.png").is_file()
    assert os.listdir(tmp_path) == ["onecycle.png"]


def test_guide_lists_every_schedule_and_preset():
    from importlib.resources import files

    from lr_plugins.schedules import CURVES

    text = GUIDE.read_text()
    for name in CURVES:
        assert f"| `{name}` |" in text, name
    for p in files("lr_plugins.conf").joinpath("schedule").iterdir():
        if p.name.endswith(".yaml"):
            assert f"| `{p.name.removesuffix('.yaml')}`" in text, p.name


def test_every_figure_the_guide_shows_is_drawn_by_the_docs_build():
    """The guide's ``img/<preset>.png`` come from docs/_hooks/schedule_figures.py (mkdocs.yml's hook),
    one per shipped preset, drawn from the presets themselves: nothing committed can go stale."""
    import importlib.util

    import yaml

    root = GUIDE.parents[2]
    assert "docs/_hooks/schedule_figures.py" in yaml.safe_load((root / "mkdocs.yml").read_text())["hooks"]
    spec = importlib.util.spec_from_file_location("schedule_figures", root / "docs" / "_hooks" / "schedule_figures.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    shown = set(re.findall(r"\]\(img/(\w+)\.png\)", GUIDE.read_text()))
    presets = {p.stem for p in hook.PRESETS.glob("*.yaml")}
    assert {"wsd", "linear", "polynomial", "inverse_sqrt", "plateau", "schedule_free"} <= shown <= presets
    png = hook.draw("wsd")
    assert png[:4] == b"\x89PNG" and len(png) > 5_000
    lrs, _ = hook.plateau_curve()  # the plateau figure's LR drops where its made-up loss stalls
    assert lrs[0] == 0.0 and max(lrs) == 1.0 and min(lrs) < 0.1


def test_the_api_page_documents_every_schedule():
    from lr_plugins.schedules import CURVES

    api = (GUIDE.parents[1] / "api.md").read_text()
    missing = [n for n in CURVES if f"::: lr_plugins.{n}\n" not in api]
    assert not missing, f"docs/api.md has no `::: lr_plugins.<name>` entry for {missing}"
