"""Scrapy settings of the `influencers` project.

Project settings live here; environment variables (the database, the platform URL, the key
that decrypts account passwords) are read only by `influencers.core.config`. Every setting can be
overridden per run with ``-s NAME=VALUE``. Prefixes: ``SITE_*`` (which platform, how pages are
rendered), ``INGEST_*`` (claims and pages, see influencers/extensions/ingestion.py),
``ACCOUNTS_*`` (see influencers/middlewares/accounts.py), ``PLATFORM_*`` (outages, see
influencers/middlewares/platform.py), ``MYSQL_*`` (see
influencers/pipelines/mysql.py), ``TALLIES_*`` (see influencers/extensions/tallying.py).
"""

from scrapy.settings.default_settings import DOWNLOADER_MIDDLEWARES_BASE as _SCRAPY_DOWNLOADER_MIDDLEWARES

BOT_NAME = "influencers"
SPIDER_MODULES = ["influencers.spiders"]
NEWSPIDER_MODULE = "influencers.spiders"
COMMANDS_MODULE = "influencers.commands"  # `scrapy crawl` exits 2 when the crawl cannot start

# -- the platform ----------------------------------------------------------------------------
SITE_ADAPTER = None  # dotted path of a SiteAdapter subclass; None: INFLUENCERS_SITE_ADAPTER (default the reference platform's)
SITE_URL = None  # None: INFLUENCERS_SITE_URL
SITE_RENDER = None  # json | html | js; None: the adapter's default (-a render= wins)
ROBOTSTXT_OBEY = False
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"

# -- ingestion service (influencers/extensions/config.py reads and checks these) ---------------
INGEST_LEASE_SECONDS = 60  # a claim's lease, renewed by heartbeats
INGEST_HEARTBEAT_INTERVAL = 0  # 0: a third of the lease
INGEST_POLL_INTERVAL = 5  # service mode: seconds between looks for claimable tasks
INGEST_MAX_TASKS = 0  # service mode: tasks (each with its own account) crawled at once; 0: all the pool allows
INGEST_PAGES_IN_FLIGHT = 1  # per task; 1 keeps a shifting listing from hiding rows
INGEST_CLAIM_WAIT = 60  # domain mode: seconds to wait for a claimable task / an idle account
INGEST_FAILED_PAGES_RETRY_AFTER = 300  # a task with failed pages (or an adapter error) is paused this long, then retried
INGEST_CURSOR_RESTARTS = 3  # cursor platforms: times per run an expired cursor restarts the listing from page 1
INGEST_DB_RETRY_MAX = 10  # seconds between tries at most while MySQL is unreachable (the crawl waits it out)

# -- accounts --------------------------------------------------------------------------------
ACCOUNTS_ENABLED = True  # False: requests go out without an account (no login, no pacing)
ACCOUNTS_REQUEST_INTERVAL = 0.25  # seconds between two requests of one account
ACCOUNTS_MAX_INTERVAL = 30  # the most a run of 429s stretches that interval to
ACCOUNTS_RETRY_AFTER_MARGIN = 0.2  # seconds added to a 429's Retry-After
ACCOUNTS_RELOGIN_ATTEMPTS = 1  # logins again per request after its session expired
ACCOUNTS_LOGIN_ATTEMPTS = 3  # tries of one login before the account counts as unusable
ACCOUNTS_CAPTCHA_FIRST_COOLDOWN = 30  # seconds an account rests after its first captcha; doubled on each repeat
ACCOUNTS_CAPTCHA_COOLDOWN = 300  # seconds an account rests after a captcha, at most
ACCOUNTS_DAILY_CAP_COOLDOWN = None  # None: until the next local midnight (INFLUENCERS_TZ)
ACCOUNTS_LOGIN_FAILURE_COOLDOWN = 600  # seconds an account rests after its logins kept failing

# -- platform outages (influencers/middlewares/platform.py) -----------------------------------
PLATFORM_OUTAGE_ENABLED = True  # False: a dead platform spends page retries and fails pages, as any error
PLATFORM_OUTAGE_FAILURES = 3  # consecutive transport errors / 5xx (no success between) before a check
PLATFORM_OUTAGE_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]  # "did not serve", like a refused connection
PLATFORM_OUTAGE_FIRST_DELAY = 1  # seconds between the first probes of an outage, doubling ...
PLATFORM_OUTAGE_MAX_DELAY = 60  # ... up to this
PLATFORM_PROBE_TIMEOUT = 10  # seconds a probe may take before it counts as unanswered

# One item per page (influencers/items.py): Scrapy 2.19 starts CONCURRENT_ITEMS coroutines for
# every response whatever it yields, a large share of the crawler's CPU per page at the default
# of 100.
CONCURRENT_ITEMS = 1

# -- MySQL pipeline --------------------------------------------------------------------------
MYSQL_BATCH_ITEMS = 2000  # rows per transaction
MYSQL_FLUSH_INTERVAL = 1.0  # seconds: what is ready is written at least this often
MYSQL_MAX_PENDING_ITEMS = 20000  # rows waiting before the spider is held back
MYSQL_WRITERS = 2  # at most this many batches written at once, each of other tasks

# -- tallies of 429s and captchas per account (influencers/extensions/tallying.py) ------------
TALLIES_FLUSH_INTERVAL = 5.0  # seconds: the crawl adds what it counted to the database at least this often

# -- components ------------------------------------------------------------------------------
EXTENSIONS = {
    "influencers.extensions.ingestion.IngestionService": 0,
    "influencers.extensions.tallying.ResponseTallies": 100,
    "influencers.extensions.progress.CrawlProgress": 500,
}
PROGRESS_ENABLED = None  # None: a one-line progress display when stderr is a terminal
PROGRESS_INTERVAL = 1.0
# Scrapy's own middlewares and ours in the _BASE dict, not in DOWNLOADER_MIDDLEWARES: a
# `-s DOWNLOADER_MIDDLEWARES=…` replaces that dict whole, and the crawl would go on with no account,
# no login and no outage handling, without a word. There it adds to these (None switches one off).
DOWNLOADER_MIDDLEWARES_BASE = {
    **_SCRAPY_DOWNLOADER_MIDDLEWARES,
    # between RedirectMiddleware (600) and CookiesMiddleware (700): it picks the cookiejar
    # before cookies are added, and sees 302s/429s before redirects and retries do.
    "influencers.middlewares.accounts.AccountsMiddleware": 650,
    # above RetryMiddleware (550): sees refused connections, timeouts and 5xx before a retry is
    # spent on them; below AccountsMiddleware: while the platform is down, requests wait here,
    # before an account is paced, logged in or blamed.
    "influencers.middlewares.platform.PlatformMiddleware": 620,
}
ITEM_PIPELINES = {"influencers.pipelines.mysql.MySQLPipeline": 300}

# 429 is handled per account by AccountsMiddleware (Retry-After), not by RetryMiddleware.
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]
RETRY_TIMES = 5
# Scrapy's own, plus what a browser-rendered page raises when the platform cannot be reached
# (net::ERR_CONNECTION_REFUSED, navigation timeouts): retried, and counted by the platform middleware.
RETRY_EXCEPTIONS = [
    "scrapy.exceptions.CannotResolveHostError",
    "scrapy.exceptions.DownloadConnectionRefusedError",
    "scrapy.exceptions.DownloadFailedError",
    "scrapy.exceptions.DownloadTimeoutError",
    "scrapy.exceptions.ResponseDataLossError",
    "twisted.internet.error.ConnectionDone",
    "twisted.internet.error.ConnectError",
    "twisted.internet.error.ConnectionLost",
    OSError,
    "scrapy.core.downloader.handlers.http11.TunnelError",
    "playwright._impl._errors.Error",
]
RETRY_PRIORITY_ADJUST = 1
# The spider retries malformed pages with get_retry_request, which carries retry_times on purpose.
META_COPY_WARN_SKIP_KEYS = ["retry_times"]
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4  # per account: each account has its own download slot
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = 60
COOKIES_DEBUG = False  # never log cookies
# Scrapy re-reads and re-parses a generator callback's source on every response to warn about
# `return value`; its cache is keyed by bound methods that die with each request, so it costs
# CPU on every page; the spiders here return nothing.
WARN_ON_GENERATOR_RETURN_VALUE = False
LOG_FORMATTER = "influencers.extensions.logformatter.PrivateLogFormatter"  # no contact data in logs
LOG_LEVEL = "INFO"
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # no code-execution endpoint in a process holding decrypted passwords

# -- JavaScript pages: scrapy-playwright on Debian's Chromium ---------------------------------
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
# Installed as DOWNLOAD_HANDLERS by the spider only when pages are rendered as `js`: the handler
# starts a Node.js Playwright driver per scheme at engine start (memory and CPU for a crawl
# that never needs them). An explicit -s DOWNLOAD_HANDLERS=... wins.
SITE_JS_DOWNLOAD_HANDLERS = {
    "http": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
    "https": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
}
PLAYWRIGHT_BROWSER_TYPE = "chromium"
PLAYWRIGHT_LAUNCH_OPTIONS = {
    "executable_path": "/usr/bin/chromium",
    "headless": True,
    "args": [
        "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
    ],
}
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = 30_000
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 4
