"""lr_plugins.training_length: steps per epoch and the whole fit's optimizer steps, against Lightning itself.

A fresh fit's total must be Lightning's ``estimated_stepping_batches``; after a resume with another
accumulation it must be the number of optimizer steps the resumed fit really ends at
(``trainer.global_step`` after it), which Lightning's estimate is not.
"""

from __future__ import annotations

import lightning.pytorch as L
import pytest
import torch
from conftest import TinyModule, make_loader, make_trainer
from test_callback_resume import SaveAt

from lr_plugins.training_length import remaining_steps, steps_per_epoch, total_steps


class Measure(L.Callback):
    """Reads the two numbers at train start (a resume is restored by then)."""

    def on_train_start(self, trainer, pl_module):
        self.spe, self.total = steps_per_epoch(trainer), total_steps(trainer)
        self.estimate = trainer.estimated_stepping_batches


@pytest.mark.parametrize("kwargs,spe", [
    (dict(max_epochs=3), 8), (dict(max_epochs=3, accumulate_grad_batches=3), 3), (dict(max_epochs=5, max_steps=11), 8),
    (dict(max_epochs=2, limit_train_batches=5), 5), (dict(max_epochs=-1, max_steps=7), 8),
])
def test_a_fresh_fit_is_lightnings_estimate_and_the_steps_it_runs(tmp_path, kwargs, spe):
    m = Measure()
    trainer = make_trainer(tmp_path, [m], **kwargs)
    trainer.fit(TinyModule(), make_loader())
    assert m.spe == spe and m.total == m.estimate == trainer.global_step


@pytest.mark.parametrize("stop", [3, 8, 13, 24])  # mid-epoch, an epoch's last batch, mid-epoch, an epoch end
@pytest.mark.parametrize("accumulate", [1, 2, 3])
def test_after_a_resume_with_another_accumulation_it_is_the_steps_really_run(tmp_path, stop, accumulate):
    trainer = make_trainer(tmp_path / "a", [SaveAt(tmp_path, [stop])], max_epochs=5)
    trainer.fit(TinyModule(), make_loader())
    m = Measure()
    trainer = make_trainer(tmp_path / "b", [m], max_epochs=6, accumulate_grad_batches=accumulate)
    torch.manual_seed(0)
    trainer.fit(TinyModule(), make_loader(), ckpt_path=tmp_path / f"step={stop}.ckpt")
    assert m.total == trainer.global_step
    assert m.spe == -(-8 // accumulate)
    if accumulate > 1:
        assert m.estimate != trainer.global_step  # what Lightning's estimate gets wrong


def test_remaining_steps_by_hand():
    assert remaining_steps(batches=8, accumulate=1, epochs_left=2) == 16
    assert remaining_steps(batches=8, accumulate=2, epochs_left=1, batches_done=3) == 3  # steps after batches 4, 6, 8
    assert remaining_steps(batches=7, accumulate=2, epochs_left=2) == 8  # ceil(7 / 2) per epoch
    assert remaining_steps(batches=8, accumulate=1, epochs_left=0) == 0
    assert remaining_steps(batches=float("inf"), accumulate=1, epochs_left=1) == float("inf")


def test_the_callback_module_still_exports_steps_per_epoch():
    import lr_plugins.callback

    assert lr_plugins.callback.steps_per_epoch is steps_per_epoch and "steps_per_epoch" in lr_plugins.callback.__all__
