"""Request and response models: the OpenAPI document is generated from these.

Request bodies take JSON as JSON Schema reads it: no unknown fields, no "5" or true for a
number, but 5.0 is the integer 5. Bounds here keep a request from doing unbounded work (a crawl split
into a million subtasks) or overflowing a column; the domain rules themselves stay in the core
(`validate_domain`, `AccountManager.add`), which answers 400 with its own message.

Times: fields documented "UTC" carry `Z`; report times are local (INFLUENCERS_TZ) and carry
the zone's offset.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from influencers.core.identities import (  # the identity's caps: the core checks the rest
    MAX_HEADER_NAME_LENGTH,
    MAX_HEADER_VALUE_LENGTH,
    MAX_HEADERS,
    MAX_PROXY_URL_LENGTH,
    MAX_USER_AGENT_LENGTH,
)
from influencers.core.reports import ACTIVITY_DAYS, ACTIVITY_HOURS
from influencers.core.selection import NAME_MAX, NUMBER_MAX, TEXT_MAX, Selection
from influencers.core.tasks.creating import DEFAULT_SPLIT, MAX_PAGES, MAX_SUBTASKS  # the CLI's caps too

MAX_INT = 2**31 - 1  # INT columns
MAX_BIGINT = 2**63 - 1
MAX_PASSWORD_BYTES = 127  # the Fernet token of 127 UTF-8 bytes still fits accounts.password (255)

TaskState = Literal["pending", "in_progress", "paused", "completed", "failed"]
TaskType = Literal["ingestion", "export"]
AccountStatus = Literal["idle", "ingesting", "exporting", "disabled"]
ExportFormat = Literal["csv", "jsonl", "xlsx"]


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _password(value: str) -> str:
    if len(_encodable(value).encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValueError(f"must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8")
    return value


def _json_integer(value: object) -> object:
    if isinstance(value, (str, bool)):
        raise ValueError("must be a JSON number, not a string or a boolean")
    return value


Text = Annotated[str, AfterValidator(_encodable)]
Integer = Annotated[int, BeforeValidator(_json_integer)]


class Strict(BaseModel):
    """A request body: unknown fields rejected; strings are never numbers (see `Integer`)."""

    model_config = ConfigDict(extra="forbid")


# -- errors -----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. invalid_argument, task_not_found, invalid_transition")
    message: str = Field(description="one line saying what is wrong")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]


# -- requests ---------------------------------------------------------------------------------


class CrawlTaskIn(Strict):
    domain: Text = Field(min_length=1, max_length=100, description="the domain (领域), e.g. 美妆",
                         examples=["美妆"])
    pages: Integer = Field(ge=1, le=MAX_PAGES, description="crawl pages 1..pages")
    # The bounds inside the union's integer arm, as `ExportTaskIn.limit` says why.
    split: Annotated[int, Field(ge=1, le=MAX_PAGES), BeforeValidator(_json_integer)] | None = Field(
        None, description=f"pages per subtask (default {DEFAULT_SPLIT}); pages/split may not exceed {MAX_SUBTASKS}"
        " subtasks; a platform that pages with cursors takes none")


FilterNumber = Annotated[int, Field(ge=-NUMBER_MAX, le=NUMBER_MAX), BeforeValidator(_json_integer)] | None
FilterText = Annotated[Text, Field(min_length=1, max_length=TEXT_MAX)] | None


class SelectionIn(Strict):
    """A selection's filters (`influencers.core.selection`), every one optional: those of
    `GET /influencers`, for a saved search or an export."""

    domain: Annotated[Text, Field(min_length=1, max_length=100)] | None = None
    q: FilterText = Field(None, description="nickname holds this text")
    uid: FilterText = None
    fans_min: FilterNumber = None
    fans_max: FilterNumber = None
    region: FilterText = Field(None, description="region starts with this")
    tag: FilterText = None
    has_contact: bool = Field(False, description="only influencers with a contact")
    status: Literal["pending_export", "exported"] | None = None
    growth_7d_min: FilterNumber = None
    growth_30d_min: FilterNumber = None

    def selection(self) -> Selection:
        return Selection(**self.model_dump())


class ExportTaskIn(Strict):
    domain: Text = Field(min_length=1, max_length=100, examples=["游戏"])
    # The bounds inside the union's integer arm: on the union itself they reach the OpenAPI
    # document as "ge"/"le", which JSON Schema does not know, so clients see no bounds at all.
    limit: Annotated[int, Field(ge=1, le=MAX_INT), BeforeValidator(_json_integer)] | None = Field(
        None, description="export at most this many rows; null: all pending")
    format: ExportFormat = "csv"
    filter: SelectionIn | None = Field(None, description="export only the rows these filters select (its domain"
                                       " and status are the task's)")
    search: Annotated[Text, Field(min_length=1, max_length=NAME_MAX)] | None = Field(
        None, description="export only the rows this saved search selects (`filter` overrides its filters)")


class PauseIn(Strict):
    reason: Text = Field("paused by operator", min_length=1, max_length=255)


# The bounds inside the unions' arms, as `ExportTaskIn.limit` says why.
ProxyUrl = Annotated[Text, Field(min_length=1, max_length=MAX_PROXY_URL_LENGTH)]
UserAgent = Annotated[Text, Field(min_length=1, max_length=MAX_USER_AGENT_LENGTH)]
Headers = Annotated[
    dict[Annotated[Text, Field(min_length=1, max_length=MAX_HEADER_NAME_LENGTH)],
         Annotated[Text, Field(min_length=1, max_length=MAX_HEADER_VALUE_LENGTH)]],
    Field(max_length=MAX_HEADERS),
]
PROXY_DESCRIPTION = ("http(s)://[user:password@]host:port; stored encrypted, never returned: responses show its"
                     " scheme://host:port as `proxy`. SOCKS proxies are refused (Scrapy's HTTP downloader cannot"
                     " use them)")
USER_AGENT_DESCRIPTION = "the User-Agent this account sends: printable ASCII"
HEADERS_DESCRIPTION = ("extra headers this account sends, name: value (not Host, Cookie, Authorization,"
                       " Proxy-Authorization, Content-Length or User-Agent)")


class AccountIn(Strict):
    username: Text = Field(min_length=1, max_length=255)
    password: Annotated[str, AfterValidator(_password)] = Field(
        min_length=1, max_length=MAX_PASSWORD_BYTES, description="stored encrypted; never returned or logged",
        json_schema_extra={"format": "password", "writeOnly": True},
    )
    daily_export_limit: Integer = Field(4000, ge=0, le=MAX_INT)
    proxy: ProxyUrl | None = Field(None, description=PROXY_DESCRIPTION, json_schema_extra={"writeOnly": True})
    user_agent: UserAgent | None = Field(None, description=USER_AGENT_DESCRIPTION)
    headers: Headers | None = Field(None, description=HEADERS_DESCRIPTION)


class IdentityIn(Strict):
    """A field left out keeps its value; null removes it."""

    proxy: ProxyUrl | None = Field(None, description=f"{PROXY_DESCRIPTION}; a new one forgets the old one's"
                                   " failures", json_schema_extra={"writeOnly": True})
    user_agent: UserAgent | None = Field(None, description=USER_AGENT_DESCRIPTION)
    headers: Headers | None = Field(None, description=f"{HEADERS_DESCRIPTION}; replaces the extra headers")


class DisableIn(Strict):
    reason: Text = Field(min_length=1, max_length=255, description="why; kept with the account and in its history")


class EnableIn(Strict):
    reason: Text | None = Field(None, min_length=1, max_length=255)


# -- responses --------------------------------------------------------------------------------


class Progress(BaseModel):
    pages_done: int | None = Field(None, description="ingestion: pages committed")
    pages_total: int | None = Field(None, description="ingestion: pages in the range; null: until the listing ends")
    exported: int | None = Field(None, description="export: rows this task exported")
    rows_pending: int | None = Field(None, description="export: rows of the domain still pending")
    percent: float | None = Field(None, ge=0, le=100)


class TaskSummary(BaseModel):
    id: int
    task_type: TaskType
    domain: str
    status: TaskState
    parent_id: int | None
    is_parent: bool
    page_from: int | None
    page_to: int | None
    progress_marker: str | None
    export_limit: int | None
    exported_count: int
    account: str | None = Field(description="username of the assigned account")
    attempts: int
    last_error: str | None
    progress: Progress


class TaskList(BaseModel):
    total: int = Field(description="tasks matching the filters (the list keeps the newest `limit`)")
    tasks: list[TaskSummary]


class Event(BaseModel):
    id: int
    created_at: datetime = Field(description="UTC")
    entity: Literal["task", "account"]
    entity_id: int
    event: str
    from_status: str | None
    to_status: str | None
    task_id: int | None
    account_id: int | None
    worker: str | None
    reason: str | None


class TaskDetail(BaseModel):
    id: int
    task_type: TaskType
    domain: str
    status: TaskState
    parent_id: int | None
    is_parent: bool
    page_from: int | None
    page_to: int | None
    progress_marker: str | None
    export_limit: int | None
    export_format: ExportFormat | None
    export_filter: dict[str, Any] | None = Field(description="export: the filters of the rows it takes; null: all")
    exported_count: int
    assigned_account_id: int | None
    account: str | None
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: datetime | None = Field(description="UTC")
    updated_at: datetime | None = Field(description="UTC")
    progress: Progress | None = Field(description="null for a completed task outside the recent window")
    subtasks: list[TaskSummary] = Field(description="a start_crawl parent's page-range subtasks")
    events: list[Event] = Field(description="the task's history, oldest first")


class Account(BaseModel):
    id: int
    username: str
    status: AccountStatus
    status_reason: str | None
    daily_export_limit: int
    today_export_count: int = Field(description="rows exported on the current quota day")
    remaining_quota: int = Field(description="rows it may still export today")
    quota_date: date | None = Field(description="local quota day the count belongs to")
    cooldown_until: datetime | None = Field(description="UTC")
    last_used_at: datetime | None = Field(description="UTC")
    created_at: datetime | None = Field(description="UTC")
    proxy: str | None = Field(description="scheme://host:port of its proxy (never the credentials); null: none")
    user_agent: str | None = Field(description="the User-Agent it sends; null: the crawl's default")
    proxy_health: str | None = Field(description="ok, or 'failed N×: reason' (consecutive failures); null: no proxy")
    pages_today: int = Field(0, description="listing pages it read on the current local day")
    pages_per_day: int | None = Field(None, description="its own budget of listing pages a day; null: the site"
                                      " adapter's, if it declares one")
    requests_per_minute: int | None = Field(None, description="its own budget of requests a minute; null: the site"
                                            " adapter's, if it declares one")


class TaskCount(BaseModel):
    task_type: TaskType
    status: TaskState
    tasks: int


class Backlog(BaseModel):
    domain: str
    pending: int = Field(description="rows waiting for export")
    daily_quota: int = Field(description="sum of the daily limits of accounts not disabled")
    days_needed: int | None = Field(description="days of quota the backlog needs; null when no quota")


class Status(BaseModel):
    generated_at: datetime = Field(description="UTC")
    today: date = Field(description="the local quota day")
    tz: str
    task_counts: list[TaskCount] = Field(description="subtasks (what workers claim) by type and state")
    tasks: list[TaskSummary]
    accounts: list[Account]
    backlog: list[Backlog]


class IngestionRow(BaseModel):
    domain: str
    account: str | None
    influencers: int
    pages: int
    first_page: int | None
    last_page: int | None
    first_time: datetime | None = Field(description="local time")
    last_time: datetime | None = Field(description="local time")


class IngestionPage(BaseModel):
    domain: str
    account: str | None
    task_id: int
    page_number: int
    influencers: int
    start_time: datetime | None = Field(description="local time")
    end_time: datetime | None = Field(description="local time")
    nicknames: list[str]


class IngestionReport(BaseModel):
    date: date
    tz: str
    rows: list[IngestionRow] = Field(description="per domain and account")
    pages: list[IngestionPage] | None = Field(description="with details=true: one row per page; else null")


class ExportRow(BaseModel):
    account: str
    domain: str
    rows_exported: int
    files: int
    first_time: datetime | None = Field(description="local time")
    last_time: datetime | None = Field(description="local time")
    paths: list[str]


class ExportReport(BaseModel):
    date: date
    tz: str
    rows: list[ExportRow]


class HourActivity(BaseModel):
    start: datetime = Field(description="the hour's first instant, local time (INFLUENCERS_TZ) with its offset")
    pages: int = Field(ge=0, description="listing pages committed whose crawl started in this hour")


class DayActivity(BaseModel):
    date: Annotated[date, Field(description="a local day (INFLUENCERS_TZ)")]  # no `= Field`: it would shadow the type
    rows_exported: int = Field(ge=0, description="rows in the files published that day (as `report export`)")
    files: int = Field(ge=0)


class QuotaUse(BaseModel):
    id: int
    username: str
    status: AccountStatus
    used: int = Field(ge=0, description="rows exported on today's quota day; 0 when the account's count belongs"
                                        " to an earlier day")
    limit: int = Field(ge=0, description="its daily export limit")


class Activity(BaseModel):
    """The dashboard's charts: a week of pages per hour and of exports per day, and today's quotas."""

    generated_at: datetime = Field(description="UTC")
    today: date = Field(description="the local day the last `days` entry is")
    tz: str
    hours: list[HourActivity] = Field(min_length=ACTIVITY_HOURS, max_length=ACTIVITY_HOURS,
                                      description=f"the {ACTIVITY_HOURS} hours ending with the current local hour,"
                                                  " oldest first; idle hours are 0")
    days: list[DayActivity] = Field(min_length=ACTIVITY_DAYS, max_length=ACTIVITY_DAYS,
                                    description=f"the {ACTIVITY_DAYS} local days ending today, oldest first; idle"
                                                " days are 0")
    quota: list[QuotaUse] = Field(description="every account, in id order")


# -- conversions ------------------------------------------------------------------------------


def as_utc(value: Any) -> Any:
    """A naive DATETIME read in the UTC session, marked as UTC."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def as_local(value: Any, zone: tzinfo) -> Any:
    """A naive local wall time (a report's, see `reports.to_local`) marked with its zone, so it
    carries the offset that applied at that moment."""
    if not isinstance(value, datetime) or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=zone)
