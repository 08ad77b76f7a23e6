"""Site adapters: one module per platform (see base.py)."""
