"""Ensemble evaluation counts only members that fit the module exactly (issue 17 item 10).

A member with missing tensors used to run with the module's live weights standing in for them
(``functional_call`` is not strict) and was counted; one of another shape crashed the fit.
"""

from __future__ import annotations

import lightning.pytorch as L
import pytest
import torch
from conftest import make_trainer
from test_snapshot import class_loader, classifier, reference_metrics
from torch import nn

from lr_plugins import SGDR, SnapshotEnsemble
from lr_plugins.snapshot import evaluate_ensemble, load_snapshot, save_snapshot
from lr_plugins.snapshot.evaluate import misfit


def mean_softmax(states, x):
    """The reference: each member loaded strictly into its own nn.Linear, softmax averaged."""
    probs = []
    for sd in states:
        m = nn.Linear(4, 3)
        m.load_state_dict(sd, strict=True)
        probs.append(torch.softmax(m(x), -1))
    return sum(probs) / len(probs)


def test_members_that_do_not_fit_are_left_out_and_not_counted():
    torch.manual_seed(0)
    net = nn.Linear(4, 3)
    good = [nn.Linear(4, 3).state_dict() for _ in range(2)]
    partial = {"weight": nn.Linear(4, 3).weight.detach()}  # no bias: the live bias would stand in
    other = nn.Linear(5, 3).state_dict()  # another architecture
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    with pytest.warns(UserWarning, match=r"2 ensemble member\(s\) do not fit the module Linear") as rec:
        r = evaluate_ensemble(net, [good[0], partial, other, good[1]], lambda: [(x, y)], names=["a", "b", "c", "d"])
    message = str(rec[0].message)
    assert "b (missing bias)" in message and "c (weight has shape (3, 5), the module (3, 4))" in message
    p = mean_softmax(good, x)
    assert r["size"] == 2.0
    assert r["acc"] == pytest.approx((p.argmax(-1) == y).float().mean().item(), abs=1e-7)
    assert r["loss"] == pytest.approx(-torch.log(p[torch.arange(32), y]).mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="at least one snapshot that fits the module; 1 did not"):
        evaluate_ensemble(net, [other], lambda: [(x, y)])


def test_misfit_is_the_strict_load_verdict():
    """``misfit`` is None exactly when ``load_state_dict(strict=True)`` accepts the state dict."""
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    full = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).state_dict()
    cases = [full, {k: v for k, v in full.items() if "running" not in k}, {**full, "extra": torch.zeros(1)},
             nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5)).state_dict()]
    for sd in cases:
        try:
            nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).load_state_dict(sd, strict=True)
            strict_ok = True
        except RuntimeError:
            strict_ok = False
        assert (misfit(net, sd) is None) == strict_ok


class Replace(L.Callback):
    """After training epoch ``epoch``, rewrites the oldest kept snapshot without the BatchNorm statistics
    (what a snapshot of a BatchNorm-free variant of the model holds), atomically and under the same name."""

    def __init__(self, snap, epoch):
        self.snap, self.epoch, self.replaced = snap, epoch, None

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch != self.epoch:
            return
        path = self.snap.paths[0]
        s = load_snapshot(path)
        save_snapshot(path.parent, {k: v for k, v in s["state_dict"].items() if "running" not in k and "num_batches" not in k},
                      s["meta"])
        self.replaced = path.name


def test_a_member_replaced_mid_training_by_another_architecture_is_left_out(tmp_path):
    snap = SnapshotEnsemble(dirpath=tmp_path / "s", keep=4)
    sabotage = Replace(snap, 2)
    trainer = make_trainer(tmp_path, [snap, SGDR(max_lr=0.2, cycle_length=1), sabotage], max_epochs=5,
                           limit_val_batches=None)
    with pytest.warns(UserWarning, match="do not fit the module Classifier") as rec:
        trainer.fit(classifier(), class_loader(), class_loader(n=64, seed=1))
    assert any(sabotage.replaced in str(w.message) and "missing" in str(w.message) for w in rec)
    kept = list(snap.paths)
    assert sabotage.replaced not in {p.name for p in kept} and len(kept) == 4
    acc, nll, _ = reference_metrics(kept, class_loader(n=64, seed=1))  # strict loads of the genuine members
    m = trainer.callback_metrics
    assert m["val/ensemble_size"].item() == len(kept)
    assert m["val/ensemble_acc"].item() == pytest.approx(acc, abs=1e-6)
    assert m["val/ensemble_loss"].item() == pytest.approx(nll, rel=1e-5)
