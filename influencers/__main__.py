"""`python -m influencers`."""

import sys

from influencers.cli import main

if __name__ == "__main__":
    sys.exit(main())
