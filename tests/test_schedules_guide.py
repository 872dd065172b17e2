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
