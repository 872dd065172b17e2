"""The lr-train app: the Hydra front end over the library (``lr-train``, ``lr-preview``), its demo
data (MNIST-1D, digits) and models, the per-run history and the sweep summary.

The library (:mod:`lr_plugins`) never imports from here; the app's primary Hydra config is the
top-level ``conf/`` folder of a source checkout (shipped in the wheel as ``lr_plugins/app/_conf``).

:mod:`~lr_plugins.app.build` is the ground floor: it composes the config, builds every object of
a run once into a :class:`~lr_plugins.app.build.Run` and plans the fit; :mod:`~lr_plugins.app.validate`
checks a config and returns its Run, :mod:`~lr_plugins.app.preview` draws it and
:mod:`~lr_plugins.app.train` fits it. Imports go one way: build <- validate <- preview, train.

A run's life, each in its own module that train calls with a line or two:
:mod:`~lr_plugins.app.checkpointing` (``last.ckpt`` every epoch and every N steps; a ``ckpt_path``
file checked against the model), :mod:`~lr_plugins.app.resume` (which run ``ckpt_path`` continues;
nothing left to train), :mod:`~lr_plugins.app.signals` (SIGTERM/SIGINT: the exact step saved,
``status: interrupted``), :mod:`~lr_plugins.app.run_lock` (one live run per folder; a sweep job
never writes into another's), :mod:`~lr_plugins.app.optuna_trials` (a failed trial is a failed
trial; a bad search refused before the first), :mod:`~lr_plugins.app.launch_checks`,
:mod:`~lr_plugins.app.fit_checks` and :mod:`~lr_plugins.app.outcome` (``result.json``: did the run
end before its schedule?).
"""
