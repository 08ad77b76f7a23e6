"""``python -m sandbox``: see ``sandbox.cli``."""
from __future__ import annotations

from sandbox.cli import main

raise SystemExit(main())
