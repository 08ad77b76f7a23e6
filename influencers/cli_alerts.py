"""`python -m influencers alerts …`: the alerts recorded and their delivery, a test message to
every URL; and the `alerter` that makes and sends them (`influencers.alerting`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from influencers import alerting
from influencers.argtypes import positive_int
from influencers.tables import render

if TYPE_CHECKING:
    from influencers.cli import Context

ALERT_COLUMNS = [
    ("id", "id"), ("created_at", "time"), ("kind", "kind"), ("subject", "subject"), ("message", "message"),
    ("delivery", "delivery"), ("last_error", "last error"),
]


def alert_rows(ctx: Context, limit: int) -> list[dict[str, Any]]:
    """The latest alerts, times local (INFLUENCERS_TZ), delivery in words."""
    local = ctx.config.quota_day.local_time
    return [{
        "id": alert.id, "created_at": local(alert.created_at), "kind": alert.kind, "subject": alert.subject,
        "message": alert.message, "last_error": alert.last_error,
        "delivery": (f"delivered {local(alert.delivered_at)}" if alert.delivered_at
                     else f"pending ({alert.attempts} tries)" if alert.attempts else "pending"),
    } for alert in alerting.alert_store(ctx).recent(limit)]


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    print(render(alert_rows(ctx, args.limit), ALERT_COLUMNS, args.format))
    return 0


def cmd_test(args: argparse.Namespace, ctx: Context) -> int:
    notifier = alerting.Notifier(ctx.config.alerts.urls)
    if not notifier.names:
        print("INFLUENCERS_ALERT_URLS is empty: nothing to test")
        return 1
    results = notifier.send_each("[influencers] test", "a test alert from `python -m influencers alerts test`")
    for name, problem in results:
        print(f"{name}: {'delivered' if problem is None else 'FAILED: ' + problem}")
    return 0 if all(problem is None for _, problem in results) else 1


def register(commands: Any) -> None:
    """Add `alerts …` and `alerter` to the CLI's sub-parsers."""
    alerts = commands.add_parser("alerts", help="alerts recorded and their delivery").add_subparsers(
        dest="alerts_command", required=True)
    listing = alerts.add_parser("list", help="the latest alerts, newest first, with their delivery")
    listing.add_argument("--limit", type=positive_int, default=20)
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    listing.set_defaults(handler=cmd_list)
    alerts.add_parser("test", help="send a test message to every INFLUENCERS_ALERT_URLS URL, one line each"
                      ).set_defaults(handler=cmd_test)
    alerting.register(commands)
