"""Benchmarks: one script per path, each run as ``python -m bench.<name>`` (see bench/README.md)."""
