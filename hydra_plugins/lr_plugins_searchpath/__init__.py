"""Hydra plugin package: puts lr-plugins' packaged config groups on every Hydra app's search path."""
