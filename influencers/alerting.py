"""`python -m influencers alerter`: find what needs a person and tell them (`influencers.core.alerts`).

A long-lived process. Every ``--interval`` seconds a round reads the new events and the
conditions (starved pool, spent quotas, reported outages), records each new cause once per
``INFLUENCERS_ALERT_WINDOW``, and sends the alerts that are due to every URL of
``INFLUENCERS_ALERT_URLS`` through apprise (WeCom, DingTalk, Feishu, Slack, e-mail, JSON webhooks,
…). A delivery that fails is retried on later rounds with a growing delay (the crawls and exports
never wait for it: they only write events, in their own transactions). Run one or several:
they take turns on the events, and a delivery is leased to one of them.

MySQL unreachable for longer than ``INFLUENCERS_ALERT_OUTAGE_AFTER`` is alerted from here
directly (there is nowhere to record it) and recorded once MySQL is back. SIGTERM and SIGINT end
the process after the current round.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import apprise

from influencers.argtypes import seconds
from influencers.core.alerts import AlertStore, Cause
from influencers.core.config import AlertSettings
from influencers.core.db import ensure_connected
from influencers.core.errors import ConfigError, DatabaseError, DatabaseUnavailable
from influencers.core.outage import Outage
from influencers.core.redact import redact_text

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0
OUTAGE_BACKOFF_CAP = 10.0
SEND_TIMEOUT = 10.0  # seconds one URL may take
DELIVERY_LEASE = 120.0  # seconds an alert being sent is not sent by another alerter
RETRY_FIRST, RETRY_CAP = 30.0, 3600.0  # seconds before a failed delivery is tried again, doubling
DELIVERIES_PER_ROUND = 20
TITLE = "[influencers] {kind}: {subject}"

# Webhook URLs carry their keys: apprise's own log lines may quote a URL (`Notifier` takes its
# failures from the call's captured entries instead), and urllib3's DEBUG lines print the path.
logging.getLogger(apprise.LOGGER_NAME).propagate = False
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)


class Notifier:
    """The configured URLs, each its own apprise object so a failure names its service (never
    the URL: it carries the webhook key)."""

    def __init__(self, urls: Sequence[str]) -> None:
        self._secrets = [part for url in urls for part in _secret_parts(url)]
        self._targets: list[tuple[str, apprise.Apprise]] = []
        for position, url in enumerate(urls, 1):
            target = apprise.Apprise()
            if not target.add(url):
                raise ConfigError("INFLUENCERS_ALERT_URLS", f"item {position} is not a notification URL apprise"
                                                            " knows (see https://appriseit.com/services/)")
            self._targets.append((f"URL {position} ({target[0].service_name})", target))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._targets]

    def send_each(self, title: str, body: str) -> list[tuple[str, str | None]]:
        """Send to every URL: (its name, the problem in one line, or None when delivered)."""
        results: list[tuple[str, str | None]] = []
        for name, target in self._targets:
            said: list[str] = []
            ok = target.notify(body=body, title=title, notify_type=apprise.NotifyType.WARNING, timeout=SEND_TIMEOUT,
                               log_level=logging.WARNING,
                               log_callback=lambda entry, _plugin, said=said: said.append(str(entry.message)))
            results.append((name, None if ok else self._scrub(said[-1] if said else "not delivered")))
        return results

    def send(self, title: str, body: str) -> list[str]:
        """Send to every URL; the problems, one line each (empty: all delivered)."""
        return [f"{name}: {problem}" for name, problem in self.send_each(title, body) if problem]

    def _scrub(self, text: str) -> str:
        text = redact_text(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:300]


def _secret_parts(url: str) -> list[str]:
    """The parts of a notification URL that may be a key, to mask if a message repeats them."""
    rest = url.split("://", 1)[-1]
    return sorted({part for part in (rest, *rest.replace("?", "/").replace("@", "/").split("/")) if len(part) >= 6},
                  key=len, reverse=True)


class AlerterService:
    """The loop: a round, a wait; MySQL's absence alerted once it lasts, and waited out."""

    def __init__(self, store: AlertStore, notifier: Notifier, settings: AlertSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.notifier = notifier
        self.settings = settings
        self.clock = clock
        self._starved_since: float | None = None
        self._db_alert: tuple[Cause, bool] | None = None  # sent while MySQL was away: (cause, delivered)
        self._db_alerted_at: float | None = None

    def run(self, interval: float, stop: threading.Event, *, once: bool = False) -> int:
        outage = Outage("MySQL", logger, cap=OUTAGE_BACKOFF_CAP, clock=self.clock)
        while not stop.is_set():
            try:
                self.round(outage)
            except DatabaseUnavailable as exc:
                wait = outage.failed(exc)
                self._database_away(outage)
                if stop.wait(wait):
                    return 0
                continue
            if once or stop.wait(interval):
                return 0
        return 0

    def round(self, outage: Outage | None = None) -> None:
        """Record what is new, then send what is due. MySQL gone raises `DatabaseUnavailable`."""
        try:
            ensure_connected(self.store.conn)
            if outage is not None:
                outage.recovered()
            if self._db_alert is not None:
                cause, delivered = self._db_alert
                self.store.raise_alerts([cause], delivered=delivered)
                self._db_alert = None
            for alert in self.store.raise_alerts(self._conditions()):
                logger.warning("alert %s: %s", alert.kind, alert.message, extra={"alert_id": alert.id})
            self._deliver()
        except DatabaseUnavailable:
            raise
        except DatabaseError as exc:
            logger.warning("alert round skipped: %s", exc)

    def _conditions(self) -> list[Cause]:
        after = self.settings.outage_after
        causes = self.store.outages(after)
        if self.store.quota_spent():
            causes.append(Cause("quota_spent", "", "every account's export quota for today is spent while an"
                                                   " export waits"))
        if not self.store.pool_starved():
            self._starved_since = None
        elif self._starved_since is None:
            self._starved_since = self.clock()
        elif self.clock() - self._starved_since >= after:
            causes.append(Cause("pool_exhausted", "", f"no account has been ready for waiting work for"
                                                      f" {self.clock() - self._starved_since:.0f}s"))
        return causes

    def _deliver(self) -> None:
        for alert in self.store.due(limit=DELIVERIES_PER_ROUND, lease=DELIVERY_LEASE):
            problems = self.notifier.send(*_text(alert.kind, alert.subject, alert.message))
            if not problems:
                self.store.delivered(alert.id)
                logger.info("alert %s delivered", alert.id, extra={"alert_id": alert.id})
                continue
            retry_in = min(RETRY_CAP, RETRY_FIRST * 2 ** (alert.attempts - 1))
            self.store.failed(alert.id, "; ".join(problems), retry_in=retry_in)
            logger.warning("alert %s not delivered (attempt %d, next in %.0fs): %s", alert.id, alert.attempts,
                           retry_in, "; ".join(problems), extra={"alert_id": alert.id})

    def _database_away(self, outage: Outage) -> None:
        """Alert MySQL's absence once it has lasted; once per window however often it flaps."""
        if outage.since is None or self._db_alert is not None:
            return
        lasted = self.clock() - outage.since
        recent = self._db_alerted_at is not None and self.clock() - self._db_alerted_at < self.settings.window
        if lasted < self.settings.outage_after or recent:
            return
        cause = Cause("database_unreachable", "", f"MySQL unreachable from the alerter for {lasted:.0f}s")
        problems = self.notifier.send(*_text(cause.kind, cause.subject, cause.message))
        self._db_alert, self._db_alerted_at = (cause, not problems), self.clock()
        if problems:
            logger.warning("alert database_unreachable not delivered (kept for when MySQL is back): %s",
                           "; ".join(problems))
        else:
            logger.warning("alert database_unreachable delivered: %s", cause.message)


def _text(kind: str, subject: str, message: str) -> tuple[str, str]:
    return TITLE.format(kind=kind, subject=subject or "all").strip(), message


def alert_store(ctx: Any) -> AlertStore:
    return AlertStore(ctx.conn, ctx.config.quota_day, window=ctx.config.alerts.window)


def cmd_alerter(args: argparse.Namespace, ctx: Any) -> int:
    settings = ctx.config.alerts
    notifier = Notifier(settings.urls)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    if not notifier.names:
        logger.warning("INFLUENCERS_ALERT_URLS is empty: alerts are recorded (`alerts list`) but sent nowhere")
    service = AlerterService(alert_store(ctx), notifier, settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    actor = f"alerter:{socket.gethostname()[:40]}:{os.getpid()}"
    logger.info("%s sending to %s every %gs (window %gs, outages after %gs)", actor,
                ", ".join(notifier.names) or "nowhere", args.interval, settings.window, settings.outage_after)
    code = service.run(args.interval, stop, once=args.once)
    logger.info("%s stopped", actor)
    return code


def register(commands: Any) -> None:
    """Add `alerter` to the CLI's sub-parsers."""
    parser = commands.add_parser(
        "alerter", help="alert banned accounts, failed tasks, spent quotas, outages (run one or several)",
        description="Every --interval seconds, record what needs a person (once per INFLUENCERS_ALERT_WINDOW)"
                    " and send it to INFLUENCERS_ALERT_URLS; failed deliveries are retried.",
    )
    parser.add_argument("--interval", type=seconds, default=DEFAULT_INTERVAL,
                        help="seconds between rounds (default %(default)s)")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    parser.set_defaults(handler=cmd_alerter)

