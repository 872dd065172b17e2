"""The sweep summary: every job folder gets a row, a failed or corrupt job never breaks it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from lr_plugins.app.summary import SweepSummary, load_results, markdown_table, summarize


def _job(sweep: Path, name: str, overrides: list[str], result: object | None = None, raw: str | None = None) -> Path:
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if raw is not None:
        (folder / "result.json").write_text(raw)
    elif result is not None:
        (folder / "result.json").write_text(json.dumps(result))
    return folder


def _ok(overrides: list[str], acc: float) -> dict:
    history = {"step": [0, 1, 2], "lr": [0.1, 0.05, 0.0], "epoch": [0], "val_acc": [acc]}
    return {"overrides": overrides, "status": "ok", "metrics": {"val/acc": acc, "test/acc": acc - 0.01}, "history": history}


@pytest.fixture
def sweep(tmp_path) -> Path:
    s = tmp_path / "sweep"
    _job(s, "0", ["schedule.max_lr=0.1"], _ok(["schedule.max_lr=0.1"], 0.9))
    _job(s, "1", ["schedule.max_lr=abc"], {"overrides": ["schedule.max_lr=abc"], "status": "failed", "metrics": {},
                                            "error": "invalid config: max_lr='abc' | not allowed"})
    _job(s, "2", ["schedule.max_lr=0.05"], raw='{"overrides": ["schedule.max_lr=0.05"], "metr')  # killed mid-write by hand
    _job(s, "3", ["schedule.max_lr=0.02"], raw="[1, 2]")
    _job(s, "4", ["schedule.max_lr=0.01"], {"overrides": ["schedule.max_lr=0.01"], "metrics": ["not", "a", "dict"]})
    _job(s, "5", ["schedule.max_lr=0.005"])  # never finished: no result.json
    _job(s, "10", ["schedule.max_lr=0.001"], _ok(["schedule.max_lr=0.001"], 0.8))  # natural order: after 5
    return s


def test_every_job_gets_a_row_and_corrupt_files_are_failed_rows(sweep):
    from lr_plugins.app.summary import failed_jobs

    rows = summarize(sweep, echo=False)
    assert [r["job"] for r in rows] == ["0", "1", "2", "3", "4", "5", "10"]
    assert [r["status"] for r in rows] == ["ok", "failed", "failed", "failed", "failed", "missing", "ok"]
    by_job = {r["job"]: r for r in rows}
    assert "Expecting" in by_job["2"]["error"] or "Unterminated" in by_job["2"]["error"]
    assert by_job["2"]["error"].startswith("unreadable result.json")
    assert "JSON object" in by_job["3"]["error"] and "'metrics' is a list" in by_job["4"]["error"]
    assert by_job["5"]["error"] == "no result.json: the job did not finish"
    # Overrides of unreadable jobs come from Hydra's own record of the job.
    assert by_job["2"]["overrides"] == "schedule.max_lr=0.05" and by_job["5"]["overrides"] == "schedule.max_lr=0.005"
    csv_rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [r["status"] for r in csv_rows] == [r["status"] for r in rows]
    assert float(csv_rows[0]["test/acc"]) == pytest.approx(0.89) and csv_rows[1]["test/acc"] == ""
    assert csv_rows[1]["error"] == "invalid config: max_lr='abc' | not allowed"
    md = (sweep / "summary.md").read_text()
    assert md.splitlines()[0] == "| job | overrides | test/acc | val/acc | status | error |"
    assert "max_lr='abc' \\| not allowed" in md  # a | inside a cell does not break the table
    assert all(line.count(" | ") == 5 for line in md.splitlines() if not line.startswith("|-"))
    assert (sweep / "summary.png").stat().st_size > 10_000
    assert [r["job"] for r in failed_jobs(rows)] == ["1", "2", "3", "4", "5"]


def test_a_plot_that_cannot_be_drawn_leaves_the_tables(tmp_path):
    bad_history = _ok(["a=1"], 0.9) | {"history": {"lr": [0.1, 0.2]}}  # no "step": the plot cannot draw it
    _job(tmp_path, "0", ["a=1"], bad_history)
    with pytest.warns(UserWarning, match="summary.png not drawn"):
        rows = summarize(tmp_path, echo=False)
    assert rows[0]["status"] == "ok" and (tmp_path / "summary.csv").exists() and (tmp_path / "summary.md").exists()


def test_load_results_of_an_empty_folder(tmp_path, capsys):
    assert load_results(tmp_path) == [] and summarize(tmp_path) == []
    assert "no summary written" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())


def test_sweep_summary_exits_non_zero_after_writing_when_a_job_failed(sweep, capsys):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    with pytest.raises(SystemExit) as e:
        SweepSummary().on_multirun_end(config=config)
    assert e.value.code == 1
    assert (sweep / "summary.csv").exists()
    err = capsys.readouterr().err
    assert "5 of 7 jobs failed" in err and "job 1 (schedule.max_lr=abc): invalid config" in err


def test_sweep_summary_of_good_jobs_returns(tmp_path):
    _job(tmp_path, "0", ["a=1"], _ok(["a=1"], 0.9))
    _job(tmp_path, "1", ["a=2"], _ok(["a=2"], 0.8) | {"status": None} | {"status": "ok"})
    SweepSummary().on_multirun_end(config=OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [r["overrides"] for r in rows] == ["a=1", "a=2"] and {r["status"] for r in rows} == {"ok"}


def test_results_without_status_are_ok(tmp_path):
    """result.json files written before the status field existed read as finished jobs."""
    old = _ok(["a=1"], 0.9)
    del old["status"]
    _job(tmp_path, "0", ["a=1"], old)
    (row,) = summarize(tmp_path, echo=False)
    assert row["status"] == "ok" and row["error"] == "" and row["val/acc"] == 0.9


def test_markdown_table_formats():
    table = markdown_table(["job", "lr_finder/basin", "val/acc"], [{"job": "0", "lr_finder/basin": 3.2e-05, "val/acc": 0.98765}])
    assert table.splitlines()[2] == "| 0 | 3.2e-05 | 0.9877 |"
