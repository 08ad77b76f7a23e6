"""A log formatter that keeps scraped personal data out of the logs.

Scrapy logs every scraped item (at DEBUG) and every dropped item (at WARNING) with its full
content: here that is an influencer's contact details (WeChat id, e-mail). This formatter logs
no item content: scraped items are counted in the stats (``item_scraped_count``) and not logged
at all (which also saves building a log record per item), dropped items are logged with their
reason only. Enabled by ``LOG_FORMATTER`` in settings.py.
"""

from __future__ import annotations

from typing import Any

from scrapy.http import Response
from scrapy.logformatter import LogFormatter, LogFormatterResult
from twisted.python.failure import Failure


class PrivateLogFormatter(LogFormatter):
    def scraped(self, item: Any, response: Response | Failure | None, spider: Any) -> LogFormatterResult | None:
        return None

    def dropped(self, item: Any, exception: BaseException, response: Response | Failure | None,
                spider: Any) -> LogFormatterResult:
        result = super().dropped(item, exception, response, spider)
        return {**result, "msg": "Dropped: %(exception)s", "args": {"exception": exception}}

    def item_error(self, item: Any, exception: BaseException, response: Response | Failure | None,
                   spider: Any) -> LogFormatterResult:
        result = super().item_error(item, exception, response, spider)
        return {**result, "msg": "Error processing an item of type %(type)s",
                "args": {"type": type(item).__name__}}
