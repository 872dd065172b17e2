"""lr-train's checkpoints (issue 17 items 1 and 11): last.ckpt every epoch and every N steps, kill -9
then ``ckpt_path=last`` continues that run, a finished one is reported as such, a file that is not a
checkpoint of this model is refused with one line before training."""

from __future__ import annotations

import signal

import pytest
import torch
from lifecycle_run import DIGITS, history, lr_train, result

from lr_plugins.app.checkpointing import LastCheckpoint, NotACheckpoint, check_matches, progress, read_checkpoint

SPE = 5  # trainer.limit_train_batches=5: optimizer steps per epoch


def _epoch_of(path) -> tuple[int, int]:
    return progress(torch.load(path, weights_only=True))


@pytest.mark.slow  # ~25 s: four lr-train processes
def test_kill_9_after_epoch_2_of_3_then_ckpt_path_last_continues_that_run(tmp_path):
    done = lr_train([*DIGITS, "trainer.max_epochs=3", "hydra.run.dir=outputs/finished"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    killed = lr_train([*DIGITS, "trainer.max_epochs=3", "hydra.run.dir=outputs/killed",
                       "+callbacks.kill._target_=lifecycle_helpers.KillAtEpochStart", "+callbacks.kill.epoch=2"], tmp_path)
    assert killed.returncode == -signal.SIGKILL
    ckpt = tmp_path / "outputs" / "killed" / "checkpoints" / "last.ckpt"
    assert _epoch_of(ckpt) == (2, 2 * SPE)  # written at the end of epoch 2, before the kill
    resumed = lr_train([*DIGITS, "trainer.max_epochs=3", "ckpt_path=last", "hydra.run.dir=outputs/resumed"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    line = next(ln for ln in resumed.stdout.splitlines() if ln.startswith("lr-train: resuming"))
    assert str(tmp_path / "outputs" / "killed") in line and "epoch 2 done, optimizer step 10" in line
    run = tmp_path / "outputs" / "resumed"
    assert history(run)["step"] == list(range(2 * SPE, 3 * SPE))  # only the third epoch is trained
    finished = history(tmp_path / "outputs" / "finished")
    for key in ("lr", "loss"):  # epoch 2's own shuffle, not epoch 0's replayed: the uninterrupted run's, bit for bit
        assert [x.hex() for x in history(run)[key]] == [x.hex() for x in finished[key][2 * SPE:]], key
    assert result(run)["status"] == "ok"
    # The same again: the newest run is now the finished continuation; nothing is trained, nothing is left.
    again = lr_train([*DIGITS, "trainer.max_epochs=3", "ckpt_path=last", "hydra.run.dir=outputs/again"], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    (msg,) = [ln for ln in again.stderr.splitlines() if ln.startswith("lr-train:")]
    assert "nothing to train" in msg and str(run) in msg and "trainer.max_epochs=3" in msg
    assert not (tmp_path / "outputs" / "again").exists()


def test_step_interval_checkpoint_is_written_mid_epoch(tmp_path):
    """Epochs of 5 steps, every_n_train_steps=3: a SIGKILL in step 8 (epoch 1) leaves step 6's last.ckpt, not epoch 0's."""
    proc = lr_train([*DIGITS, "trainer.max_epochs=2", "callbacks.model_checkpoint.every_n_train_steps=3",
                     "hydra.run.dir=run", "+callbacks.kill._target_=lifecycle_helpers.SignalAtStep", "+callbacks.kill.step=8",
                     "+callbacks.kill.signame=SIGKILL"], tmp_path)
    assert proc.returncode == -signal.SIGKILL
    assert _epoch_of(tmp_path / "run" / "checkpoints" / "last.ckpt") == (1, 6)


def test_last_checkpoint_refuses_a_bad_save_top_k_naming_it():
    with pytest.raises(TypeError, match=r"save_top_k='abc' is not allowed"):
        LastCheckpoint(save_top_k="abc")
    with pytest.raises(TypeError, match=r"every_n_train_steps=-3 is not allowed"):
        LastCheckpoint(every_n_train_steps=-3)


def test_save_top_k_abc_is_one_line_naming_the_key(tmp_path):
    proc = lr_train([*DIGITS, "callbacks.model_checkpoint.save_top_k=abc", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 2
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("lr-train:")]
    assert "callbacks.model_checkpoint" in line and "save_top_k='abc'" in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- item 11: files that are not a checkpoint of this model
@pytest.fixture(scope="module")
def good_ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    proc = lr_train([*DIGITS, "trainer.max_epochs=1", "hydra.run.dir=run"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "run" / "checkpoints" / "last.ckpt"


def _bad_files(folder, good):
    data = good.read_bytes()
    (folder / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (folder / "text.ckpt").write_text("epoch 3, step 57\n")
    from lr_plugins.snapshot.store import FORMAT

    torch.save({"format": FORMAT, "state_dict": {"w": torch.zeros(2)}, "meta": {}}, folder / "snapshot.ckpt")
    state = torch.load(good, weights_only=True)
    other = dict(state, state_dict={k: torch.zeros(*(s + 1 for s in v.shape)) for k, v in state["state_dict"].items()})
    torch.save(other, folder / "other_arch.ckpt")
    return ["truncated.ckpt", "text.ckpt", "snapshot.ckpt", "other_arch.ckpt"]


def test_read_checkpoint_names_what_is_wrong(tmp_path, good_ckpt):
    from lr_plugins.app.models import MLP, Classifier

    names = _bad_files(tmp_path, good_ckpt)
    expected = {"truncated.ckpt": "cannot be read", "text.ckpt": "cannot be read", "snapshot.ckpt": "snapshot",
                "other_arch.ckpt": "another model"}
    model = Classifier(net=MLP(in_features=64))
    state = read_checkpoint(good_ckpt)
    check_matches(state, model)  # the real thing passes
    for name in names:
        with pytest.raises(NotACheckpoint, match=expected[name]):
            check_matches(read_checkpoint(tmp_path / name), model)


@pytest.mark.slow  # ~20 s: four lr-train processes
def test_lr_train_refuses_a_bad_ckpt_path_file_before_training_and_leaves_no_folder(tmp_path, good_ckpt):
    for name in _bad_files(tmp_path, good_ckpt):
        proc = lr_train([*DIGITS, f"ckpt_path={tmp_path / name}", f"hydra.run.dir=run_{name}"], tmp_path)
        assert proc.returncode == 2, (name, proc.stderr[-2000:])
        (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("lr-train:")]
        assert f"ckpt_path='{tmp_path / name}'" in line and "Traceback" not in proc.stderr, line
        assert not (tmp_path / f"run_{name}").exists()
