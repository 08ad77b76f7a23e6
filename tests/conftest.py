"""Shared fixtures: each lives in tests/fixtures/ with one job."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.core",
    "tests.fixtures.processes",
    "tests.fixtures.sandbox",
    "tests.fixtures.scrapyd",
    "tests.fixtures.api",
    "tests.fixtures.crawl",
    "tests.fixtures.private_mysql",
    "tests.fixtures.api_styles",
    "tests.fixtures.proxies",
    "tests.fixtures.browser",
    "tests.fixtures.webhook",
]
