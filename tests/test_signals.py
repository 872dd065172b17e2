"""Issue 17 item 2: SIGTERM (SLURM's time limit) and SIGINT stop lr-train at the next batch boundary with a
checkpoint of that exact step, ``result.json`` status ``interrupted`` and exit 128 + signal; ``ckpt_path=last``
then continues with the very LRs and losses (the same batches in the same order) of an uninterrupted run; a sweep launches no further job and writes its summary."""

from __future__ import annotations

import csv

import pytest
import torch
from lifecycle_run import DIGITS, history, lr_train, result

from lr_plugins.app.checkpointing import progress
from lr_plugins.app.signals import exit_status

RUN = [*DIGITS, "trainer.max_epochs=2"]  # 2 epochs of 5 steps: WarmupCosine over 10 steps


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref")
    proc = lr_train([*RUN, "hydra.run.dir=run"], root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return history(root / "run")


@pytest.mark.slow  # ~25 s: three lr-train processes
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signal_saves_the_exact_step_and_resume_continues_bit_identically(tmp_path, reference, signame):
    stopped = lr_train([*RUN, "hydra.run.dir=outputs/stopped", "+callbacks.sig._target_=lifecycle_helpers.SignalAtStep",
                        "+callbacks.sig.step=6", f"+callbacks.sig.signame={signame}"], tmp_path)
    assert stopped.returncode == exit_status(signame) == {"SIGTERM": 143, "SIGINT": 130}[signame], stopped.stderr[-2000:]
    run = tmp_path / "outputs" / "stopped"
    out = result(run)
    assert out["status"] == "interrupted" and out["signal"] == signame and out["step"] == 7
    assert progress(torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)) == (1, 7)  # step 6 finished
    assert f"{signame} received" in stopped.stderr and "ckpt_path=last" in stopped.stderr
    assert history(run)["step"] == list(range(7))
    resumed = lr_train([*RUN, "ckpt_path=last", "hydra.run.dir=outputs/resumed"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming run {run} (unfinished)" in resumed.stdout
    tail = history(tmp_path / "outputs" / "resumed")
    assert tail["step"] == [7, 8, 9]
    for key in ("lr", "loss"):  # the same LRs and the same batches in the same order: bit for bit
        joined = history(run)[key] + tail[key]
        assert [x.hex() for x in joined] == [x.hex() for x in reference[key]], key


def test_sigterm_in_a_sweep_stops_launching_and_writes_the_summary(tmp_path):
    proc = lr_train(["-m", *RUN, "hydra.sweep.dir=sweep", "+callbacks.sig._target_=lifecycle_helpers.SignalAtStep",
                     "+callbacks.sig.step=1000,3,1000"], tmp_path)
    assert proc.returncode == 143, proc.stderr[-3000:]
    rows = {r["job"]: r for r in csv.DictReader((tmp_path / "sweep" / "summary.csv").open())}
    assert rows["0"]["status"] == "ok" and rows["1"]["status"] == "interrupted"
    assert "SIGTERM received" in rows["1"]["error"]
    assert not (tmp_path / "sweep" / "2").exists()  # never launched
    assert "no further job is launched" in proc.stderr


def test_under_slurm_lightnings_requeue_handler_stays_and_sigterm_still_saves(tmp_path, monkeypatch):
    """Lightning's SLURMEnvironment (auto_requeue): its SIGUSR1 requeue handler is left in place and its SIGTERM
    handler runs next to ours; a SIGTERM in step 2 stops there with a checkpoint of that step."""
    import os
    import signal

    import lightning.pytorch as L
    from lightning.pytorch.plugins.environments import SLURMEnvironment
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from lr_plugins.app.signals import Interrupted, Interruption

    for key, value in {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "42", "SLURM_PROCID": "0",
                       "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NTASKS_PER_NODE": "1"}.items():
        monkeypatch.setenv(key, value)
    seen = {}

    class Net(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            if self.trainer.global_step == 2:
                seen["usr1"] = getattr(signal.getsignal(signal.SIGUSR1), "signal_handlers", None)
                os.kill(os.getpid(), signal.SIGTERM)
            return self.lin(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    stop = Interruption(tmp_path / "ckpt")
    trainer = L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        accelerator="cpu", devices=1, callbacks=[stop], default_root_dir=tmp_path)
    assert isinstance(trainer._accelerator_connector.cluster_environment, SLURMEnvironment)
    before = signal.getsignal(signal.SIGTERM)
    data = DataLoader(TensorDataset(torch.randn(40, 2)), batch_size=4)
    with pytest.raises(Interrupted) as info, stop.watching():
        trainer.fit(Net(), data)
    assert [h.__name__ for h in seen["usr1"]] == ["_slurm_sigusr_handler_fn"]  # Lightning's requeue, untouched
    assert info.value.signame == "SIGTERM" and info.value.step == 3
    assert progress(torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True))[1] == 3
    assert signal.getsignal(signal.SIGTERM) == before  # handlers put back
