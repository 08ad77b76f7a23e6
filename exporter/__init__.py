"""The export service: `python -m exporter run` (see exporter/service.py and exporter/batches.py)."""
