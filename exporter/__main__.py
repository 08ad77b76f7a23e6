"""`python -m exporter run [--once]`: see exporter/service.py."""
import sys

from exporter.service import main

sys.exit(main())
