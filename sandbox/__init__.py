"""The reference platform: a local influencer marketplace to crawl in demos, tests and benchmarks.

Run it with ``python -m sandbox``. It is never imported by ``influencers`` or ``exporter``
(their site adapter talks to it over HTTP only) and it is not shipped in the Scrapyd egg.
Tests import ``sandbox.data.expected_rows`` for the truth a crawl is compared with.
"""
from __future__ import annotations

from sandbox.data import DEFAULT_DOMAINS, expected_rows

__all__ = ["DEFAULT_DOMAINS", "expected_rows"]
