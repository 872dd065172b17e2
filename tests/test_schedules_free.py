"""ScheduleFree (issue 18.5): a schedule-free optimizer in eval mode for validation, test, predict and
checkpoints, in train mode for every step; plain optimizers swapped on request or refused.

The reference is the ``schedulefree`` package driven by hand: the same model, data and LRs in a
plain loop, with ``train()``/``eval()`` where its README says they go.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from lr_plugins import ScheduleFree

schedulefree = pytest.importorskip("schedulefree", reason="schedulefree is in the schedulefree extra")

EPOCHS, SPE = 3, 4


class Modes(TinyModule):
    """Records the optimizer's mode in every step of every stage, and the validation loss."""

    def __init__(self, lr=0.05, optimizer="sgd"):
        super().__init__(lr=lr, optimizer=optimizer)
        self.modes: dict[str, set] = {}
        self.val_losses: list[float] = []

    def _mode(self, stage):
        self.modes.setdefault(stage, set()).add(self.trainer.optimizers[0].param_groups[0]["train_mode"])

    def training_step(self, batch, batch_idx):
        self._mode("train")
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self._mode("val")
        x, y = batch
        self.val_losses.append(float(torch.nn.functional.mse_loss(self(x), y)))

    def test_step(self, batch, batch_idx):
        self._mode("test")

    def predict_step(self, batch, batch_idx):
        self._mode("predict")
        return self(batch[0])


def by_hand(module: TinyModule, lrs: list[float], epochs: int = EPOCHS) -> tuple[dict, list[float]]:
    """SGDScheduleFree run by hand over the same batches: eval weights after training, val loss per epoch."""
    model = copy.deepcopy(module)
    opt = schedulefree.SGDScheduleFree(model.parameters(), lr=module.lr, momentum=0.9)
    train, val = make_loader(n=32, batch_size=8), make_loader(n=8, batch_size=8, seed=1)
    losses, k = [], 0
    for _ in range(epochs):
        opt.train()
        for x, y in train:
            opt.param_groups[0]["lr"] = lrs[k]
            k += 1
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        opt.eval()
        with torch.no_grad():
            losses += [float(torch.nn.functional.mse_loss(model(x), y)) for x, y in val]
    return {k: v.clone() for k, v in model.state_dict().items()}, losses


def fit(tmp_path, module, schedule, epochs=EPOCHS, callbacks=(), ckpt_path=None):
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [schedule, rec, *callbacks], max_epochs=epochs, limit_val_batches=1,
                           enable_checkpointing=bool(callbacks))
    trainer.fit(module, make_loader(n=32, batch_size=8), make_loader(n=8, batch_size=8, seed=1), ckpt_path=ckpt_path)
    return trainer, [lrs[0] for lrs in rec.lrs]


def test_a_fit_equals_schedulefree_by_hand_with_eval_weights_for_validation(tmp_path):
    torch.manual_seed(0)
    module = Modes()
    start = copy.deepcopy(module)
    trainer, lrs = fit(tmp_path, module, ScheduleFree(warmup=1, replace_optimizer=True))
    assert type(trainer.optimizers[0]) is schedulefree.SGDScheduleFree
    np.testing.assert_allclose(lrs, ScheduleFree(max_lr=0.05, warmup=1).preview(EPOCHS * SPE, SPE), rtol=1e-12)
    weights, losses = by_hand(start, lrs)
    assert module.modes == {"train": {True}, "val": {False}}
    np.testing.assert_allclose(module.val_losses, losses, rtol=1e-5)  # validated on the averaged (eval) weights
    for name, value in module.state_dict().items():  # the fit ends in eval mode: the averaged weights
        torch.testing.assert_close(value, weights[name], rtol=1e-5, atol=1e-7)
    trainer.test(module, make_loader(n=8, batch_size=8), verbose=False)
    trainer.predict(module, make_loader(n=8, batch_size=8))
    assert module.modes["test"] == module.modes["predict"] == {False}


def test_adam_becomes_adamw_schedule_free_with_its_settings(tmp_path):
    class Adam(Modes):
        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=self.lr, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.01)

    trainer, _ = fit(tmp_path, Adam(lr=0.01), ScheduleFree(replace_optimizer=True), epochs=1)
    opt = trainer.optimizers[0]
    assert type(opt) is schedulefree.AdamWScheduleFree
    g = opt.param_groups[0]
    assert (g["lr"], g["betas"], g["eps"], g["weight_decay"]) == (0.01, (0.8, 0.99), 1e-7, 0.01)


def test_checkpoints_hold_the_averaged_weights_and_resume_continues(tmp_path):
    torch.manual_seed(0)
    module = Modes()
    start = copy.deepcopy(module)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    _, lrs = fit(tmp_path / "a", module, ScheduleFree(warmup=1, replace_optimizer=True), callbacks=[ckpt])
    (first,) = (tmp_path / "ckpt").glob("epoch=0*.ckpt")
    saved = torch.load(first, weights_only=True)
    assert saved["optimizer_states"][0]["param_groups"][0]["train_mode"] is False
    weights, _ = by_hand(start, lrs, epochs=1)  # the checkpoint after epoch 0 holds the averaged weights
    for name, value in saved["state_dict"].items():
        torch.testing.assert_close(value, weights[name], rtol=1e-5, atol=1e-7)
    resumed = Modes()
    _, rest = fit(tmp_path / "b", resumed, ScheduleFree(warmup=1, replace_optimizer=True), ckpt_path=str(first))
    assert rest == lrs[SPE:]
    for name, value in resumed.state_dict().items():  # y <- x round trip: float rounding only
        torch.testing.assert_close(value, module.state_dict()[name], rtol=1e-5, atol=1e-6)


def test_a_plain_optimizer_is_refused_before_any_step(tmp_path):
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [ScheduleFree(), rec], max_epochs=1)
    with pytest.raises(ValueError) as info:
        trainer.fit(TinyModule(), make_loader())
    msg = str(info.value)
    assert "ScheduleFree needs schedule-free optimizers" in msg and "returned SGD" in msg and "\n" not in msg
    assert "replace_optimizer=True" in msg and rec.lrs == []


def test_replace_optimizer_refuses_what_it_cannot_swap(tmp_path):
    class RMS(TinyModule):
        def configure_optimizers(self):
            return torch.optim.RMSprop(self.parameters(), lr=0.01)

    trainer = make_trainer(tmp_path, [ScheduleFree(replace_optimizer=True)], max_epochs=1)
    with pytest.raises(ValueError, match="replace_optimizer=True is not allowed with RMSprop"):
        trainer.fit(RMS(), make_loader())


def test_replace_optimizer_must_be_a_bool():
    with pytest.raises(TypeError, match="replace_optimizer='yes'"):
        ScheduleFree(replace_optimizer="yes")
