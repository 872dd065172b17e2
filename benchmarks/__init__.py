"""Benchmarks: ``python -m benchmarks.<name>`` (timings and evidence; never part of the tests)."""
