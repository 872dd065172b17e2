"""The lr-train app: the Hydra front end over the library (``lr-train``, ``lr-preview``), its demo
data (MNIST-1D, digits) and models, the per-run history and the sweep summary.

The library (:mod:`lr_plugins`) never imports from here; the app's primary Hydra config is the
top-level ``conf/`` folder of a source checkout (shipped in the wheel as ``lr_plugins/app/_conf``).
"""
