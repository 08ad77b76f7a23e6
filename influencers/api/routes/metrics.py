"""``GET /metrics``: the deployment's figures in Prometheus' text format, read from the database.

The work is done by other processes — crawls, exporters, several of each, restarted at will — and
each writes what it did to MySQL (`influencers.core.tallies`, in the transactions that do it), so
a scrape reads the database instead of counters in this process, which does none of the work and
would show none of it. Each request builds its own `CollectorRegistry` with one collector that
reads on `collect` (nothing global: the default registry would also carry this process's Python
figures, which say nothing about the work).

Every statement is cheap at ten million influencers: ``tallies`` is a few rows per counter and
label, the accounts are the pool, tasks are grouped by type and state on ``ix_tasks_claim`` (what
`status` shows), rows per domain come from ``domain_counts``; nothing counts ``influencers`` or
``ingestion_logs``. The same bearer token as the API (Prometheus sends it with its
``authorization`` scrape setting); at the root, where Prometheus looks by default. While MySQL is
away it answers 503 like every endpoint, so the scrape fails (``up`` is 0) instead of reporting
zeros.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from influencers.api.auth import require_token
from influencers.api.deps import Core, CoreDep
from influencers.api.errors import error_schema_responses
from influencers.api.query import reject_unknown_query
from influencers.core import counts, reports, tallies
from influencers.core.account_model import Account
from influencers.core.accounts import STATUSES
from influencers.core.store import EXPORTED, PENDING_EXPORT
from influencers.core.tasks import TASK_STATES, TASK_TYPES

router = APIRouter(tags=["metrics"])

#: Counters from ``tallies``: (metric name without ``_total``, tally, label name, help).
COUNTERS = (
    ("influencers_pages_ingested", tallies.PAGES_INGESTED, "domain", "Listing pages committed, per domain."),
    ("influencers_rows_ingested", tallies.ROWS_INGESTED, "domain",
     "Influencer rows those pages listed (a re-crawled row counts again), per domain."),
    ("influencers_rows_exported", tallies.ROWS_EXPORTED, "account", "Rows in published export files, per account."),
    ("influencers_rate_limited_responses", tallies.RATE_LIMITED, "account",
     "Listing responses that said too many requests (429 or the platform's code), per account."),
    ("influencers_captcha_responses", tallies.CAPTCHAS, "account", "Listing responses that were a captcha, per account."),
)


class PrometheusText(PlainTextResponse):
    media_type = CONTENT_TYPE_LATEST


def _json_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The API's error responses, documented as JSON (FastAPI would give them the route's text type)."""
    documented = error_schema_responses(*statuses)
    schema = {"$ref": "#/components/schemas/ErrorResponse"}  # the API's other routes put it there
    return {status: {"description": entry["description"], "content": {"application/json": {"schema": schema}}}
            for status, entry in documented.items()}


@dataclass(frozen=True)
class Figures:
    """What one scrape reads: the counters, the pool, subtasks by type and state, rows per domain."""

    tallies: dict[tuple[str, str], int]
    accounts: list[Account]
    tasks: list[dict[str, Any]]  # task_type, status, tasks (`reports.task_counts`)
    rows: Counter[tuple[str, str]]  # (domain, status) → rows (`counts.counted`)


def read_figures(core: Core) -> Figures:
    return Figures(tallies.totals(core.conn), core.accounts().list(), reports.task_counts(core.conn),
                   counts.counted(core.conn))


def families(figures: Figures) -> Iterator[Metric]:
    """The metric families of ``figures``, in a fixed order (pure: tested without a database)."""
    usernames = {str(account.id): account.username for account in figures.accounts}
    for metric, tally, label, documentation in COUNTERS:
        family = CounterMetricFamily(metric, documentation, labels=[label])
        for (name, value_label), value in sorted(figures.tallies.items()):
            if name == tally:
                family.add_metric([usernames.get(value_label, value_label) if label == "account" else value_label],
                                  value)
        yield family
    yield CounterMetricFamily("influencers_lease_recoveries", "Tasks taken back from dead or stuck workers.",
                              value=figures.tallies.get((tallies.LEASE_RECOVERIES, ""), 0))

    quota = GaugeMetricFamily("influencers_export_quota_left", "Rows the account may still export today"
                              " (its daily limit minus today's count, in INFLUENCERS_TZ).", labels=["account"])
    by_status = Counter(account.status for account in figures.accounts)
    pool = GaugeMetricFamily("influencers_accounts", "Accounts by status.", labels=["status"])
    for account in sorted(figures.accounts, key=lambda account: account.username):
        quota.add_metric([account.username], account.remaining_quota or 0)
    for status in STATUSES:
        pool.add_metric([status], by_status[status])
    yield quota
    yield pool

    tasks = GaugeMetricFamily("influencers_tasks", "Subtasks (what workers claim) by type and state.",
                              labels=["type", "state"])
    counted = {(row["task_type"], row["status"]): int(row["tasks"]) for row in figures.tasks}
    for task_type in TASK_TYPES:
        for state in TASK_STATES:
            tasks.add_metric([task_type, state], counted.get((task_type, state), 0))
    yield tasks

    rows = GaugeMetricFamily("influencers_rows", "Influencer rows stored, per domain and export status.",
                             labels=["domain", "status"])
    for domain in sorted({domain for domain, _ in figures.rows}):
        for status in (PENDING_EXPORT, EXPORTED):
            rows.add_metric([domain, status], figures.rows[(domain, status)])
    yield rows


class DatabaseCollector:
    """A prometheus-client collector that reads the figures when the registry collects."""

    def __init__(self, read: Callable[[], Figures]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield from families(self._read())


@router.get(
    "/metrics", response_class=PrometheusText,
    dependencies=[Depends(require_token), Depends(reject_unknown_query)],
    responses={200: {"description": "Prometheus' text exposition format"}, **_json_errors(401, 422, 503)},
    summary="Figures for Prometheus (text format): ingested, exported, quota, accounts, tasks, 429s, captchas",
)
def metrics(core: CoreDep) -> PrometheusText:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(lambda: read_figures(core)))
    return PrometheusText(generate_latest(registry))
