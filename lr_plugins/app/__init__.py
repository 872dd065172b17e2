"""The lr-train app: the Hydra front end over the library (``lr-train``, ``lr-preview``), its demo
data (MNIST-1D, digits) and models, the per-run history and the sweep summary.

The library (:mod:`lr_plugins`) never imports from here; the app's primary Hydra config is the
top-level ``conf/`` folder of a source checkout (shipped in the wheel as ``lr_plugins/app/_conf``).

:mod:`~lr_plugins.app.build` is the ground floor: it composes the config, builds every object of
a run once into a :class:`~lr_plugins.app.build.Run` and plans the fit; :mod:`~lr_plugins.app.validate`
checks a config and returns its Run, :mod:`~lr_plugins.app.preview` draws it and
:mod:`~lr_plugins.app.train` fits it. Imports go one way: build <- validate <- preview, train.
"""
