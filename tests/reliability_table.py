"""The reliability table of ``docs/reliability.md``, counted from the tests rather than typed.

Each row names a category and the pytest node ids whose cases it counts. ``--collect`` only
counts the cases (fast); the default also RUNS them and counts the outcomes: a case that passed
was refused clearly (or held: nothing lost, nothing left behind, no hang); any other outcome is
a failure of that row. ``--write`` puts the table into ``docs/reliability.md`` between the
``<!-- reliability-table -->`` markers.

To add a row: append a :class:`Row` to ``ROWS`` with the node ids of your adversarial tests.

Example:
    $ python tests/reliability_table.py --collect          # count the cases
    $ python tests/reliability_table.py --write            # run them, write the table (slow cases too)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
MARK = "<!-- reliability-table -->"


@dataclass(frozen=True)
class Row:
    category: str  # what was tried
    holds: str  # what a passing case shows
    node_ids: tuple[str, ...]  # pytest node ids (files, tests or parametrized tests)


ROWS: list[Row] = [
    Row("CLI bad values (lr-train and lr-preview, each case through both)",
        "exit 2, one line naming key, value and what is allowed; nothing left on disk",
        ("tests/test_app_safety.py::test_both_commands_refuse_the_same_bad_input",
         "tests/test_app_safety.py::test_lr_train_command_refuses_with_one_line_and_exit_2",
         "tests/test_train.py::test_warmup_longer_than_training_is_refused_before_training")),
    Row("CLI bad overrides incl. unknown options and keys (lr-train subprocess)",
        "refused before any step with one line and exit 2 (unknown options and keys too), nothing left on disk",
        ("tests/test_train.py::test_bad_override_fails_before_training",)),
    Row("CLI data-loss cases (refused run into a user's, a crashed run's, the parent or the current folder)",
        "every file that existed is still there; only this run's new files removed",
        ("tests/test_app_safety.py::test_refused_run_into_a_users_folder_keeps_it",
         "tests/test_app_safety.py::test_refused_rerun_into_a_crashed_run_keeps_its_checkpoints",
         "tests/test_app_safety.py::test_refused_run_into_the_parent_or_cwd_keeps_them",
         "tests/test_app_safety.py::test_refused_run_removes_the_folders_it_created_and_no_others",
         "tests/test_app_safety.py::test_remove_created_never_touches_what_existed")),
    Row("Sweeps with a bad or crashing job (basic and joblib launchers), corrupt result.json",
        "the other jobs run; summary written with the failed row and its error; exit status 1",
        ("tests/test_app_safety.py::test_sweep_with_a_bad_job_runs_the_others_and_writes_the_summary",
         "tests/test_app_safety.py::test_sweep_whose_first_job_is_bad_runs_the_next",
         "tests/test_app_safety.py::test_sweep_job_failing_mid_fit_keeps_the_summary_of_the_others",
         "tests/test_app_safety.py::test_joblib_sweep_with_a_bad_job_keeps_the_good_ones",
         "tests/test_summary.py")),
    Row("Schedule API bad inputs (every argument of every schedule; lr_at, preview, cycle_at, cycle_ends)",
        "TypeError/ValueError naming the argument, the value and what is allowed; no hang (10 s alarm)",
        ("tests/test_validation.py", "tests/test_schedules_safety.py")),
    Row("Malformed resume state in a checkpoint (schedule, snapshot records, LR finder result)",
        "refused before any step with an error naming the key and what is wrong",
        ("tests/test_callback_resume.py::test_malformed_schedule_state_refused_before_any_step",
         "tests/test_finder_resume.py::test_malformed_checkpoint_state_names_the_problem")),
    Row("Snapshots: crafted or copied checkpoint records, bad dirpath, members lost mid-training, kill -9 leftovers",
        "no file outside this run's snapshot folder deleted or written; bad folders refused at fit start; "
        "lost members left out with a warning",
        ("tests/test_snapshot_safety.py",)),
    Row("kill -9 loop (20 SIGKILLs, 6 during snapshot writes, each resumed)",
        "snapshot folder and records consistent, LR sequence bit-identical to an uninterrupted run, "
        "nothing outside the run folder changed",
        ("tests/test_kill_resume.py",)),
    Row("LR finder: unusable output_dir, the module's own log attributes, stop with min_epochs",
        "refused at fit start before any step, nothing left behind; the module comes back exactly",
        ("tests/test_finder_apply.py::test_unusable_output_dir_fails_at_fit_start_before_any_step",
         "tests/test_finder_restore.py::test_the_modules_own_log_attributes_are_put_back_exactly",
         "tests/test_finder_apply.py::test_stop_with_min_epochs_is_refused_before_any_step")),
    Row("DDP (2 processes, ddp_spawn) with a TensorBoard logger: finder, snapshots, schedule logging",
        "finishes under pytest's timeout (no hang), ranks agree",
        ("tests/test_finder_ddp.py::test_ddp_spawn_with_a_tensorboard_logger_finishes_and_ranks_agree",
         "tests/test_snapshot_safety.py::test_ddp_with_a_logger_leaves_out_a_member_deleted_on_rank_0",
         "tests/test_snapshot_safety.py::test_ddp_refuses_a_bad_dirpath_on_every_rank_without_hanging",
         "tests/test_callback.py::test_ddp_two_processes_apply_and_log_the_single_process_lr")),
    Row("DDP failures (2 processes, ddp_spawn, TensorBoard logger): a failure on one rank",
        "every rank stops with the same one-line error, which reaches the parent process; no hang (120 s timeout)",
        ("tests/test_distributed.py::test_a_failure_of_rank_zeros_work_stops_every_rank_with_its_error",
         "tests/test_schedules_plateau.py::test_under_ddp_a_metric_logged_on_rank_zero_only_drives_every_rank")),
]


def _pytest(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def collect(rows: list[Row]) -> list[int]:
    """How many test cases each row's node ids hold (slow ones included), in one pytest call."""
    ids = [i for row in rows for i in row.node_ids]
    proc = _pytest(["--collect-only", "-q", "-m", "slow or not slow", *ids])
    cases = [line for line in proc.stdout.splitlines() if "::" in line]
    if not cases:
        raise RuntimeError(f"pytest collected nothing:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return [sum(1 for c in cases if any(c == i or c.startswith((i + "[", i + "::")) for i in row.node_ids)) for row in rows]


def run(row: Row) -> tuple[int, int, int]:
    """Run the row's cases (slow ones included); return ``(cases, passed, skipped)``.

    A case skipped by its own condition (e.g. an unwritable-folder case when the tests run as root,
    who may write anywhere) is counted apart: neither held nor failed."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        _pytest(["-q", "-m", "slow or not slow", f"--junitxml={xml}", *row.node_ids])
        cases = ET.parse(xml).getroot().iter("testcase")
        outcomes = [next((c.tag for c in case), "passed") for case in cases]
    return len(outcomes), outcomes.count("passed"), outcomes.count("skipped")


def table(counts: list[tuple[Row, int, int | None, int]]) -> str:
    """The Markdown table; ``passed`` is ``None`` for rows that were only counted."""
    lines = ["| category | cases | held | failed | skipped | a passing case shows |", "|---|---|---|---|---|---|"]
    for row, cases, passed, skipped in counts:
        held = "not run" if passed is None else str(passed)
        failed = "" if passed is None else str(cases - passed - skipped)
        lines.append(f"| {row.category} | {cases} | {held} | {failed} | {skipped} | {row.holds} |")
    return "\n".join(lines) + "\n"


def write(text: str, doc: Path = DOC) -> None:
    """Replace the text between the two ``MARK`` lines of ``doc``."""
    parts = doc.read_text().split(MARK)
    if len(parts) != 3:
        raise SystemExit(f"{doc} needs exactly two {MARK} lines")
    doc.write_text(f"{parts[0]}{MARK}\n{text}{MARK}{parts[2]}")


def documented(doc: Path = DOC) -> dict[str, int]:
    """``{category: cases}`` as the table in ``doc`` states them."""
    body = doc.read_text().split(MARK)[1]
    out = {}
    for line in body.splitlines():
        m = re.match(r"\| (.+?) \| (\d+) \|", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collect", action="store_true", help="only count the cases, do not run them")
    parser.add_argument("--write", action="store_true", help=f"write the table into {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if args.collect:
        counts = [(row, n, None, 0) for row, n in zip(ROWS, collect(ROWS))]
    else:
        counts = [(row, *run(row)) for row in ROWS]
    text = table(counts)
    print(text)
    if args.write:
        write(text)
    return 0 if all(p is None or p + k == c for _, c, p, k in counts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
