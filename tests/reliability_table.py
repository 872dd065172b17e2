"""The reliability table of ``docs/reliability.md``, counted from the tests rather than typed.

Each row names a category and the pytest node ids whose cases it counts. ``--collect`` only
counts the cases (fast); the default also RUNS them and counts the outcomes: a case that passed
was refused clearly (or held: nothing lost, nothing left behind, no hang); any other outcome is
a failure of that row. ``--write`` puts the table into ``docs/reliability.md`` between the
``<!-- reliability-table -->`` markers.

To add a row: append a :class:`Row` to ``ROWS`` (the named cases) or ``LIFECYCLE`` (a run's life:
preempted, killed, resumed, extended, shared) with the node ids of your adversarial tests. A
lifecycle row names the kind of failure its cases guard against (``RISKS``), so the lifecycle
table adds up how many data losses, silent wrong LRs, hangs, late refusals and tracebacks were seen.

Example:
    $ python tests/reliability_table.py --collect          # count the cases
    $ python tests/reliability_table.py --write            # run them, write the tables (slow cases too)
    $ python tests/reliability_table.py --write --only lifecycle   # only the lifecycle table
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
LIFECYCLE_MARK = "<!-- lifecycle-table -->"
#: What a failed lifecycle case would be, in the order of the table's totals line.
RISKS = ("data lost", "silent wrong LR", "hang", "refused after training steps", "traceback or misleading line")


@dataclass(frozen=True)
class Row:
    category: str  # what was tried
    holds: str  # what a passing case shows
    node_ids: tuple[str, ...]  # pytest node ids (files, tests or parametrized tests)
    risk: str = ""  # lifecycle rows: what a failed case would be (one of RISKS)

    def __post_init__(self) -> None:
        if self.risk and self.risk not in RISKS:
            raise ValueError(f"risk={self.risk!r} is not one of {RISKS}")


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
]


LC = "tests/test_callback_lifecycle.py::"
LEN = "tests/test_length_change.py::"
SNAP = "tests/test_snapshot_safety.py::"
LIFECYCLE: list[Row] = [
    Row("Preemption, kill -9 and resume in lr-train (last.ckpt every epoch or N steps, SIGTERM/SIGINT, SLURM, "
        "ckpt_path=last, a run that ended before its schedule)",
        "the exact step is saved, result.json says interrupted, exit 143/130, a sweep writes its summary; "
        "ckpt_path=last names the run it continues and continues it bit-identically",
        ("tests/test_checkpointing.py::test_kill_9_after_epoch_2_of_3_then_ckpt_path_last_continues_that_run",
         "tests/test_checkpointing.py::test_step_interval_checkpoint_is_written_mid_epoch",
         "tests/test_signals.py::test_signal_saves_the_exact_step_and_resume_continues_bit_identically",
         "tests/test_signals.py::test_sigterm_in_a_sweep_stops_launching_and_writes_the_summary",
         "tests/test_signals.py::test_under_slurm_lightnings_requeue_handler_stays_and_sigterm_still_saves",
         "tests/test_outcome.py::test_result_json_reports_a_run_stopped_before_its_schedule_ended",
         "tests/test_outcome.py::test_the_schedule_callbacks_own_report_comes_first"),
        risk="data lost"),
    Row("Optuna searches with a refused or failed trial, a metric no job logs, a reversed interval",
        "the failed trial is a failed trial, the rest run and the summary is written; a bad search is refused "
        "before the first trial in one line",
        ("tests/test_optuna_trials.py::test_a_refused_trial_is_a_failed_trial_and_the_search_goes_on",
         "tests/test_optuna_trials.py::test_a_bad_search_is_refused_before_the_first_trial",
         "tests/test_optuna_trials.py::test_a_metric_the_model_does_not_log_stops_the_search_at_the_first_job"),
        risk="traceback or misleading line"),
    Row("Run folders shared by two live runs, sweeps sharing a folder or a subdir",
        "one live run per folder (the second refused naming the holder, touching nothing); a refused run removes "
        "only its own files; no sweep job writes into another job's folder",
        ("tests/test_run_lock.py::test_second_run_into_a_live_runs_folder_is_refused_naming_the_holder_and_touches_nothing",
         "tests/test_run_lock.py::test_a_stale_lock_of_a_dead_run_is_taken_over",
         "tests/test_run_lock.py::test_lock_is_exclusive_between_processes",
         "tests/test_run_lock.py::test_refused_run_removes_only_its_own_files_from_a_folder_it_created",
         "tests/test_run_lock.py::test_sweep_jobs_sharing_a_subdir_never_write_into_each_others_folder"),
        risk="data lost"),
    Row("Bad input that escaped: ckpt_path files (truncated, text, a snapshot, another architecture), save_top_k, "
        "limit_train_batches 0 or below one batch, max_epochs=null, the slurm launcher without SLURM",
        "refused before any step in one line naming the key, exit 2, no partial folder",
        ("tests/test_checkpointing.py::test_save_top_k_abc_is_one_line_naming_the_key",
         "tests/test_checkpointing.py::test_last_checkpoint_refuses_a_bad_save_top_k_naming_it",
         "tests/test_checkpointing.py::test_read_checkpoint_names_what_is_wrong",
         "tests/test_checkpointing.py::test_lr_train_refuses_a_bad_ckpt_path_file_before_training_and_leaves_no_folder",
         "tests/test_fit_checks.py::test_a_fraction_below_one_batch_is_one_line_naming_limit_train_batches",
         "tests/test_fit_checks.py::test_zero_train_batches_is_refused_as_such_not_as_infinite_training",
         "tests/test_launch_checks.py::test_slurm_launcher_without_slurm_is_one_line_before_any_job",
         "tests/test_preview.py::test_plan_reads_the_trainer_like_the_callback"),
        risk="traceback or misleading line"),
    Row("DDP failures (2 processes, ddp_spawn, TensorBoard logger): a failure on one rank",
        "every rank stops with the same one-line error, which reaches the parent process; no hang (120 s timeout)",
        ("tests/test_distributed.py::test_a_failure_of_rank_zeros_work_stops_every_rank_with_its_error",
         "tests/test_schedules_plateau.py::test_under_ddp_a_metric_logged_on_rank_zero_only_drives_every_rank"),
        risk="hang"),
    Row("Resume with another length of training or steps per epoch (named cases)",
        "seamless (every LR equals the new plan's closed form) or refused before any step with the LR before "
        "and after and both ways on; on_length_change=continue starts at the current LR",
        (LEN + "test_finished_cosine_resumed_with_more_epochs_is_refused_before_any_step",
         LEN + "test_step_unit_cosine_with_another_accumulation_is_refused_naming_it",
         LEN + "test_accumulation_doubled_on_resume_keeps_the_epoch_time",
         LEN + "test_a_warp_in_the_checkpoint_composes_on_a_second_resume",
         LEN + "test_length_free_prefix_resumes_seamlessly_with_a_shorter_or_longer_training",
         LEN + "test_continue_re_plans_the_rest_from_the_current_lr_to_the_new_end",
         LEN + "test_the_wsd_preset_resumed_in_its_stable_phase_decays_at_the_new_end",
         LEN + "test_the_wsd_preset_resumed_in_its_warmup_or_decay_with_another_length_is_refused",
         "tests/test_train_branches.py::test_cooldown_branches_from_one_wsd_checkpoint"),
        risk="silent wrong LR"),
    Row("Resume with another length: every schedule (each preset, in each unit) x every change (more or fewer "
        "epochs, accumulation 1->2 and 2->1, limit_train_batches) at every phase",
        "exactly one of: refused before any step with the LR before and after; seamless (every LR equals the closed "
        "form, no jump); continued from the current LR; the same length bit-identical",
        ("tests/test_length_family.py",),
        risk="silent wrong LR"),
    Row("The step count changing during a fit (accumulation scheduler, growing loader, two manual optimizers, "
        "max_time), SWA and BackboneFinetuning",
        "the LR follows the real length in epoch time, the driven optimizer's steps are counted, a run that ends "
        "before its schedule says so, SWA owns the LR from its start, an added group joins at its ratio",
        (LC + "test_gradient_accumulation_scheduler_is_followed_in_epoch_time",
         LC + "test_step_unit_cosine_re_plans_when_accumulation_changes_mid_fit",
         LC + "test_a_growing_data_loader_is_followed_in_epoch_time",
         LC + "test_manual_optimization_with_two_optimizers_anneals_over_its_real_length",
         LC + "test_manual_optimization_with_two_optimizers_resumes_bit_identically",
         LC + "test_a_run_that_ends_before_its_schedule_says_so",
         LC + "test_max_time_stop_is_reported",
         LC + "test_sgdr_leaves_the_last_steps_lr_not_the_next_restarts_peak",
         LC + "test_stochastic_weight_averaging_gets_the_lr_from_its_start",
         LC + "test_a_param_group_added_mid_fit_joins_the_schedule_at_its_ratio"),
        risk="silent wrong LR"),
    Row("What follows the schedule on a re-planned fit: snapshots, Plateau's warmup, a continued finished plan, "
        "lr-preview with an accumulation scheduler, the LR tags of an added group",
        "snapshots at the last step of each applied cycle; Plateau's warmup in curve time; the last LR kept; "
        "the preview equals the fit; tags as LearningRateMonitor's",
        ("tests/test_snapshot.py::test_snapshots_follow_the_warped_cycles_after_a_resume_with_more_accumulation",
         "tests/test_snapshot.py::test_snapshots_follow_a_gradient_accumulation_scheduler",
         "tests/test_snapshot.py::test_snapshots_follow_a_continued_plan",
         "tests/test_snapshot.py::test_snapshots_count_the_scheduled_optimizers_steps_under_manual_optimization",
         "tests/test_snapshot.py::test_the_no_cycle_end_warning_reads_the_resumed_fits_plan_in_any_callback_order",
         "tests/test_schedules_plateau.py::test_warmup_ends_in_curve_time_after_a_resume_with_more_accumulation",
         LEN + "test_continue_after_a_finished_sgdr_keeps_the_last_lr_not_the_next_restarts_peak",
         "tests/test_preview.py::test_preview_follows_a_gradient_accumulation_scheduler_as_the_fit_does",
         "tests/test_lr_monitor_parity.py::test_a_param_group_added_mid_fit_is_logged_as_the_monitor_logs_it"),
        risk="silent wrong LR"),
    Row("Resume without the schedule, with another optimizer, or past the schedule's range",
        "told (Lightning lists the missing callback) or refused before any step naming the change",
        (LC + "test_resume_without_the_schedule_callback_is_told",
         LC + "test_an_earlier_versions_checkpoint_state_is_still_read",
         LC + "test_two_schedule_callbacks_reach_the_one_schedule_error_even_on_resume",
         LC + "test_another_optimizer_class_on_resume_is_refused_naming_both",
         LC + "test_optimizer_change_helper_works_without_a_schedule",
         LC + "test_max_steps_beyond_the_schedule_range_names_max_steps",
         "tests/test_takeover.py::test_the_refusal_gives_a_hydra_spelling_that_composes_with_the_shipped_presets"),
        risk="silent wrong LR"),
    Row("Snapshot folders shared with another run, members of another architecture",
        "another run's files are never adopted, overwritten or counted; the resume is refused naming the folder; "
        "a misfit member is left out with a warning",
        (SNAP + "test_resuming_into_another_runs_snapshot_folder_is_refused_and_leaves_it_untouched",
         SNAP + "test_a_resume_owns_exactly_the_files_carrying_its_run_id",
         SNAP + "test_a_file_of_another_run_that_appears_mid_training_is_never_overwritten",
         SNAP + "test_a_checkpoints_run_id_is_checked",
         "tests/test_snapshot_evaluate.py"),
        risk="data lost"),
    Row("Snapshot writes on a full disk, an unwritable file or a folder in the way; unsized loaders",
        "probed at fit start where it can be (free space, a folder in the way); a failed write names the file "
        "and says the disk is full; earlier snapshots kept",
        (SNAP + "test_a_failed_snapshot_write_says_why_and_keeps_the_earlier_ones",
         SNAP + "test_a_folder_in_the_way_of_a_snapshot_name_is_refused_at_fit_start",
         SNAP + "test_free_space_is_probed_before_the_first_step",
         SNAP + "test_an_unsized_train_loader_with_step_cycles_saves_at_every_cycle_end",
         SNAP + "test_an_unsized_train_loader_with_epoch_cycles_is_refused_before_any_step"),
        risk="traceback or misleading line"),
    Row("A checkpoint's LR finder pick that no range test can have made (1e300, inf, NaN, True, a string)",
        "refused before any step naming the key",
        ("tests/test_finder_resume.py::test_a_checkpoint_pick_no_test_can_have_made_is_refused_before_any_step",
         "tests/test_finder_resume.py::test_a_checkpoint_of_a_test_that_recorded_nothing_keeps_its_nan_pick_and_nothing_else"),
        risk="silent wrong LR"),
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
    """The Markdown table; ``passed`` is ``None`` for rows that were only counted.

    Lifecycle rows (with a ``risk``) get a column naming what a failed case would be, and the
    table ends with the totals of failed cases by kind."""
    risky = any(row.risk for row, *_ in counts)
    head = "| category | cases | held | failed | skipped |" + (" a failure would be |" if risky else "")
    lines = [head + " a passing case shows |", "|---|---|---|---|---|" + ("---|" if risky else "") + "---|"]
    failures = dict.fromkeys(RISKS, 0)
    for row, cases, passed, skipped in counts:
        held = "not run" if passed is None else str(passed)
        failed = "" if passed is None else str(cases - passed - skipped)
        if passed is not None and row.risk:
            failures[row.risk] += cases - passed - skipped
        risk = f" {row.risk} |" if risky else ""
        lines.append(f"| {row.category} | {cases} | {held} | {failed} | {skipped} |{risk} {row.holds} |")
    if risky and all(p is not None for _, _, p, _ in counts):
        total = sum(c for _, c, _, _ in counts)
        held_all = sum(p or 0 for _, _, p, _ in counts)
        lines += ["", f"In all: {total} cases, {held_all} held; " + ", ".join(f"{v} {k}" for k, v in failures.items()) + "."]
    return "\n".join(lines) + "\n"


def write(text: str, doc: Path = DOC, mark: str = MARK) -> None:
    """Replace the text between the two ``mark`` lines of ``doc``."""
    parts = doc.read_text().split(mark)
    if len(parts) != 3:
        raise SystemExit(f"{doc} needs exactly two {mark} lines")
    doc.write_text(f"{parts[0]}{mark}\n{text}{mark}{parts[2]}")


def documented(doc: Path = DOC, mark: str = MARK) -> dict[str, int]:
    """``{category: cases}`` as the table between the ``mark`` lines of ``doc`` states them."""
    body = doc.read_text().split(mark)[1]
    out = {}
    for line in body.splitlines():
        m = re.match(r"\| (.+?) \| (\d+) \|", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collect", action="store_true", help="only count the cases, do not run them")
    parser.add_argument("--write", action="store_true", help=f"write the tables into {DOC.relative_to(ROOT)}")
    parser.add_argument("--only", choices=("named", "lifecycle"), help="one table only")
    args = parser.parse_args(argv)
    ok = True
    for name, rows, mark in (("named", ROWS, MARK), ("lifecycle", LIFECYCLE, LIFECYCLE_MARK)):
        if args.only and args.only != name:
            continue
        if args.collect:
            counts = [(row, n, None, 0) for row, n in zip(rows, collect(rows))]
        else:
            counts = [(row, *run(row)) for row in rows]
        text = table(counts)
        print(text)
        if args.write:
            write(text, mark=mark)
        ok = ok and all(p is None or p + k == c for _, c, p, k in counts)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
