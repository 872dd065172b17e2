"""One list of schedules (``CURVES``) and one hand-off interface (``set_peak``), issue 14 item 2.

A new schedule is its curve file (and its line in ``lr_plugins/schedules/__init__.py``), its
preset and the public class that types its signature: the tests below name the piece that is
missing, and check that every other list (``lr_plugins.__all__``, the type checkers' imports, the
schedules package's exports) is derived from ``CURVES`` and ``lr_plugins.callback.__all__``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import typing
from importlib.resources import files

import lightning.pytorch as L
import numpy as np
import pytest
import yaml
from conftest import LRRecorder, TinyModule, make_loader, make_trainer

import lr_plugins
import lr_plugins.callback
from lr_plugins.callback import ScheduleCallback, ScheduleOptions
from lr_plugins.schedules import CURVES, SMITH_FLOOR, CommonArgs, Curve, CyclicCurve

#: The smallest valid arguments of each schedule that has required ones.
OWN = {"SGDR": {"cycle_length": 2}, "CyclicLR": {"step_size": 2}, "StepDecay": {"step_size": 2},
       "ExponentialDecay": {"rate": 0.1}, "InverseTimeDecay": {"rate": 0.1}, "InverseSqrt": {"timescale": 1}}


def test_every_curve_class_of_the_package_is_registered_once():
    """Derived: the *Curve classes defined in the schedules' files are exactly CURVES' values."""
    defined = {cls for module in _curve_modules() for cls in vars(module).values()
               if isinstance(cls, type) and cls.__module__ == module.__name__ and cls.__name__.endswith("Curve")
               and cls not in (Curve, CyclicCurve)}
    assert set(CURVES.values()) == defined
    for name, curve in CURVES.items():
        callback = getattr(lr_plugins, name)
        assert issubclass(callback, curve) and issubclass(callback, ScheduleCallback), name
        assert curve.__name__ == f"{name}Curve"
    assert {n for n, c in CURVES.items() if issubclass(c, CyclicCurve)} == {"SGDR", "CyclicLR"}


def _curve_modules() -> list:
    import lr_plugins.schedules as package

    return [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]


def test_the_package_imports_every_curve_file_and_exports_its_names():
    """One line per curve file in lr_plugins/schedules/__init__.py (its ``import *``), nothing else."""
    import lr_plugins.schedules as package

    source = inspect.getsource(package)
    for module in _curve_modules():
        line = f"from {module.__name__} import *"
        assert line in source, f"{module.__file__} is not imported: add `{line}` to lr_plugins/schedules/__init__.py"
        missing = [n for n in module.__all__ if n not in package.__all__ or getattr(package, n) is not getattr(module, n)]
        assert not missing, (module.__name__, missing)
    exported = set(package.__all__)
    assert exported == {n for m in _curve_modules() for n in m.__all__}  # derived: the files' __all__, no more


def test_the_top_level_names_are_derived_from_callback_all_and_seen_by_type_checkers():
    """lr_plugins.__all__ = lr_plugins.callback.__all__ + the names of _ELSEWHERE; its TYPE_CHECKING
    block imports exactly those (``import *`` from the callback module), so the two cannot drift."""
    assert lr_plugins.__all__ == [*lr_plugins.callback.__all__, *lr_plugins._ELSEWHERE, "__version__"]
    for name in lr_plugins.__all__:
        assert hasattr(lr_plugins, name), name
    tree = ast.parse(inspect.getsource(lr_plugins))
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    imports = {(node.module, a.name) for node in block.body if isinstance(node, ast.ImportFrom) for a in node.names}
    assert imports == {("lr_plugins.callback", "*")} | {(m, n) for n, m in lr_plugins._ELSEWHERE.items()}
    assert all(a.asname in (None, a.name) for node in block.body for a in node.names)  # re-exported as is
    assert sorted(dir(lr_plugins)) == dir(lr_plugins) and set(lr_plugins.__all__) <= set(dir(lr_plugins))


def test_sgdr_without_cycle_length_is_the_presets_null():
    """Issue 19.4: SGDR(max_lr=0.1) works as the preset's cycle_length: null (a quarter of training)."""
    s = lr_plugins.SGDR(max_lr=0.1)
    assert s.cycle_length is None and s.needs_total
    assert s.cycle_ends(40, steps_per_epoch=5) == [9, 19, 29, 39]
    np.testing.assert_array_equal(s.preview(40, 5), lr_plugins.SGDR(max_lr=0.1, cycle_length=None).preview(40, 5))


def _exported_schedules(module) -> set[str]:
    return {n for n in module.__all__ if isinstance(getattr(module, n), type)
            and issubclass(getattr(module, n), ScheduleCallback) and getattr(module, n) is not ScheduleCallback}


def test_the_public_schedule_classes_are_exactly_the_registered_curves():
    for name, curve in CURVES.items():
        where = f"lr_plugins/callback.py: class {name}(ScheduleCallback, {curve.__name__})"
        assert name in lr_plugins.__all__ and name in lr_plugins.callback.__all__, (
            f"curve {name!r} has no public schedule class: add {where} and export it in lr_plugins.callback.__all__, "
            "(lr_plugins exports every name of lr_plugins.callback.__all__)")
        cls = getattr(lr_plugins, name)
        assert cls is getattr(lr_plugins.callback, name), f"lr_plugins.{name} is not lr_plugins.callback.{name}"
        assert cls.__name__ == name and issubclass(cls, curve) and issubclass(cls, ScheduleCallback), (
            f"lr_plugins.{name} must be {where}")
    for module in (lr_plugins, lr_plugins.callback):
        extra = _exported_schedules(module) - set(CURVES)
        assert not extra, f"{module.__name__} exports schedules with no registered curve: {sorted(extra)}"


def _preset_targets() -> dict[str, str]:
    folder = files("lr_plugins.conf").joinpath("schedule")
    return {p.name: yaml.safe_load(p.read_text())["_target_"] for p in folder.iterdir() if p.name.endswith(".yaml")}


def test_every_curve_has_a_preset():
    targets = _preset_targets()
    for name in CURVES:
        assert f"lr_plugins.{name}" in targets.values(), (
            f"curve {name!r} has no preset: add lr_plugins/conf/schedule/<name>.yaml with _target_: lr_plugins.{name} "
            "and the shared keys (see sgdr.yaml), relative to the optimizer's LR and to the length of training")
    assert set(targets.values()) <= {f"lr_plugins.{n}" for n in CURVES}, targets  # every preset is a schedule


def _keywords(init) -> tuple[dict[str, inspect.Parameter], set[str]]:
    """(explicit keyword parameters, keys of the ``**kwargs: Unpack[TypedDict]``) of an ``__init__``."""
    params = inspect.signature(init).parameters
    explicit = {n: p for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
    var = [n for n, p in params.items() if p.kind is p.VAR_KEYWORD]
    if not var:
        return explicit, set()
    (hint,) = typing.get_args(typing.get_type_hints(init, include_extras=True)[var[0]])  # Unpack[X] -> X
    return explicit, set(hint.__required_keys__ | hint.__optional_keys__)


@pytest.mark.parametrize("name", list(CURVES))
def test_a_public_class_takes_exactly_its_curves_arguments_and_the_options(name):
    """The classes spell out their curves' own arguments for type checkers: same names, types and defaults."""
    curve_own, curve_shared = _keywords(CURVES[name].__init__)
    if not curve_shared:  # no own __init__: Curve's, whose keywords are the shared ones
        curve_own, curve_shared = {}, set(curve_own)
    cls = getattr(lr_plugins, name)
    own, shared = _keywords(cls.__init__)
    own = {n: p for n, p in own.items() if n not in getattr(cls, "own_options", ())}  # the callback's alone
    describe = lambda ps: [(n, p.default, p.annotation) for n, p in ps.items()]  # noqa: E731
    assert describe(own) == describe(curve_own), f"lr_plugins.callback.{name}.__init__ must repeat {CURVES[name].__name__}'s"
    options = set(ScheduleOptions.__optional_keys__)
    assert options == set(lr_plugins.callback.OPTIONS)  # the typed options are the ones config() sets apart
    assert shared == curve_shared | options, (name, shared ^ (curve_shared | options))
    assert set(CommonArgs.__optional_keys__) - {"min_lr"} <= shared  # everyone takes the shared arguments


def test_a_new_curve_registers_itself_and_names_are_unique():
    class SquareCurve(Curve, name="Square"):
        def body(self, t, total, peak, steps_per_unit):
            return peak / (1 + t) ** 2

    try:
        assert CURVES["Square"] is SquareCurve
        assert SquareCurve(max_lr=1.0, unit="step").preview(3).tolist() == [1.0, 0.25, 1 / 9]
        with pytest.raises(TypeError, match="two curves register the name 'Square'"):
            class Other(Curve, name="Square"):
                pass
    finally:
        CURVES.pop("Square", None)
    assert "Square" not in CURVES


def _make(name, **kw):
    return CURVES[name](**{**OWN.get(name, {}), **kw})


@pytest.mark.parametrize("name", list(CURVES))
@pytest.mark.parametrize("start", [None, 0.1])
def test_set_peak_equals_constructing_with_that_peak(name, start):
    kw = {"min_lr": 1e-4, "warmup": 1, "unit": "step"}
    if name == "CyclicLR":
        kw["min_lr"] = None  # its floor follows the peak: a quarter of it
    s = _make(name, max_lr=start, **kw)
    s.set_peak(0.37)
    ref = _make(name, max_lr=0.37, **kw)
    assert s.max_lr == 0.37 and s.config() == ref.config()
    np.testing.assert_array_equal(s.preview(40), ref.preview(40))


@pytest.mark.parametrize("name", list(CURVES))
@pytest.mark.parametrize("bad,exc,words", [(0.0, ValueError, "(0.0, inf]"), (-1, ValueError, "(0.0, inf]"),
                                            (float("nan"), ValueError, "finite"), ("0.1", TypeError, "number"),
                                            (True, TypeError, "number"), (None, TypeError, "number")])
def test_set_peak_refuses_bad_values_and_changes_nothing(name, bad, exc, words):
    s = _make(name, max_lr=0.1, min_lr=0.01)
    before = s.config()
    with pytest.raises(exc) as info:
        s.set_peak(bad)
    assert f"max_lr={bad!r}" in str(info.value) and words in str(info.value)
    assert s.config() == before


@pytest.mark.parametrize("name", [n for n in CURVES if n != "CyclicLR"])
@pytest.mark.parametrize("floor", ["min_lr", "warmup_start_lr"])
def test_set_peak_below_a_floor_names_the_floor(name, floor):
    s = _make(name, max_lr=0.1, **{floor: 0.05})
    before = s.config()
    with pytest.raises(ValueError, match=rf"{floor}=0.05 is not allowed: it must be <= the peak LR \(max_lr=0.01\)"):
        s.set_peak(0.01)
    assert s.config() == before


def test_one_cycle_three_phase_rule_is_checked_by_set_peak():
    s = lr_plugins.OneCycle(max_lr=1.0, min_lr=0.01, three_phase=True)
    with pytest.raises(ValueError, match="min_lr=0.01 is not allowed with three_phase=True"):
        s.set_peak(0.2)  # initial LR 0.2 / 25 = 0.008 < min_lr
    assert s.max_lr == 1.0


@pytest.mark.parametrize(
    "max_lr,min_lr,pick,floor",
    [(0.1, 0.02, 0.5, 0.1),          # both known: the ratio 1/5 is kept
     (0.1, 0.0, 0.5, 0.0),           # a zero floor stays zero
     (None, 0.03, 0.4, 0.4 * SMITH_FLOOR),  # peak unknown until fit start: Smith's 1/4
     (None, None, 0.4, None),        # None already follows the peak
     (0.1, None, 0.4, None)],
)
def test_cyclic_lr_moves_its_floor_with_the_peak(max_lr, min_lr, pick, floor):
    s = lr_plugins.CyclicLR(max_lr=max_lr, min_lr=min_lr, step_size=2, unit="step")
    s.set_peak(pick)
    assert s.max_lr == pick and (s.min_lr == pytest.approx(floor) if floor is not None else s.min_lr is None)
    lo = pick * SMITH_FLOOR if floor is None else floor
    assert s.lr_at(0) == pytest.approx(lo) and s.lr_at(2) == pytest.approx(pick)


def test_cyclic_lr_refused_pick_leaves_floor_and_peak():
    s = lr_plugins.CyclicLR(max_lr=0.1, min_lr=0.02, warmup_start_lr=0.05, step_size=2)
    with pytest.raises(ValueError, match=r"warmup_start_lr=0.05 is not allowed: it must be <= the peak LR \(max_lr=0.01\)"):
        s.set_peak(0.01)
    assert (s.max_lr, s.min_lr) == (0.1, 0.02)


class PickAtFitStart(L.Callback):
    """Stands in for the LR finder: hands a pick to the schedule at fit start, through set_peak only."""

    def __init__(self, schedule, pick):
        self.schedule, self.pick = schedule, pick

    def on_fit_start(self, trainer, pl_module):
        self.schedule.set_peak(self.pick)


@pytest.mark.parametrize("name", ["WarmupCosine", "CyclicLR"])
def test_a_peak_set_at_fit_start_is_the_one_training_uses(tmp_path, name):
    kw = {"warmup": 1} if name == "WarmupCosine" else {"min_lr": 0.001}
    schedule = getattr(lr_plugins, name)(**OWN.get(name, {}), **kw)
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [PickAtFitStart(schedule, 0.3), schedule, rec], max_epochs=3)
    trainer.fit(TinyModule(lr=0.05), make_loader())
    # Reference: the same schedule constructed with that peak (and, for CyclicLR, Smith's floor).
    ref_kw = {**kw, "min_lr": 0.3 * SMITH_FLOOR} if name == "CyclicLR" else kw
    ref = CURVES[name](max_lr=0.3, **OWN.get(name, {}), **ref_kw).preview(24, steps_per_epoch=8)
    np.testing.assert_allclose([lrs[0] for lrs in rec.lrs], ref, rtol=1e-12)


@pytest.mark.parametrize("name", list(CURVES))
@pytest.mark.parametrize("unit", ["step", "epoch"])
def test_total_free_steps_are_the_steps_two_lengths_share(name, unit):
    """The length-change contract, derived for every curve: the first min(free(T1), free(T2)) steps
    have the same LR under both lengths; for a curve that overrides it (the base's 0 is safe), one of the
    next two steps differs (the first step of a decay is the peak under any length), so
    ``total_free_steps`` is not merely safe but tight."""
    s = _make(name, max_lr=1.0, min_lr=None if name == "CyclicLR" else 0.01, warmup=3, unit=unit)
    short, long = 200, 320
    free = min(s.total_free_steps(short, 4), s.total_free_steps(long, 4))
    a, b = s.preview(short, 4), s.preview(long, 4)
    n = int(min(free, short))
    np.testing.assert_array_equal(a[:n], b[:n])
    if n < short and type(s).total_free_steps is not Curve.total_free_steps:  # an override must be tight
        assert not np.array_equal(a[n:n + 2], b[n:n + 2]), (name, n)
