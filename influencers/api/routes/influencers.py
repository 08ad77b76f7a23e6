"""Influencers: search with the filters of `python -m influencers search` (keyset pages), one
influencer with its history, and saved searches. The filters are `core.selection`'s; an export of
a selection is `POST /tasks/export` with ``filter`` or ``search``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from influencers.api.deps import CoreDep
from influencers.api.errors import ApiError, error_schema_responses
from influencers.api.schemas import SelectionIn, as_utc
from influencers.core import search as finder
from influencers.core import selection as selections
from influencers.core.selection import NAME_MAX, NUMBER_MAX, STATUSES, TEXT_MAX, Selection

router = APIRouter(tags=["influencers"])

SortName = Annotated[str, Query(pattern="^(" + "|".join(s.replace("-", "\\-") for s in finder.SORTS) + ")$",
                                description="a column, '-' for largest first; growth is the 7-day growth")]
TextQuery = Annotated[str | None, Query(min_length=1, max_length=TEXT_MAX)]
Number = Annotated[int | None, Query(ge=-NUMBER_MAX, le=NUMBER_MAX)]
SearchName = Annotated[str, Path(min_length=1, max_length=NAME_MAX, description="the saved search's name")]


class InfluencerOut(BaseModel):
    id: int
    uid: str
    nickname: str | None
    domain: str
    fans: int | None
    region: str | None
    tags: list[str]
    has_contact: bool
    profile_url: str | None
    status: str
    ingested_at: datetime = Field(description="UTC: when it was first stored")
    updated_at: datetime = Field(description="UTC: when a crawl last listed it")
    growth_7d: int | None
    growth_30d: int | None
    crawl_count: int


class InfluencerList(BaseModel):
    items: list[InfluencerOut]
    next: str | None = Field(description="pass as `after` for the next page; null: this is the last page")


class CrawlOut(BaseModel):
    id: int = Field(description="the ingestion log row")
    task_id: int
    domain: str
    page_number: int
    account: str | None
    start_time: datetime
    end_time: datetime
    source_url: str | None


class ExportFileOut(BaseModel):
    id: int = Field(description="the export batch")
    task_id: int
    account: str | None
    file_path: str
    state: str = Field(description="published: the file is written; reserved: being written")
    export_format: str
    start_time: datetime
    end_time: datetime | None


class HistoryPoint(BaseModel):
    recorded_at: datetime = Field(description="UTC: the crawl that saw the fans change")
    fans: int


class InfluencerDetail(BaseModel):
    influencer: InfluencerOut
    source_page: str | None
    raw_data: Any = Field(description="the row as the platform gave it")
    last_crawl: CrawlOut | None
    export: ExportFileOut | None = Field(description="the export file it went to; null: not exported")
    history: list[HistoryPoint] = Field(description="fans each time they changed, oldest first")


class SavedSearch(BaseModel):
    name: str
    filter: dict[str, Any]
    updated_at: datetime


@router.get("/influencers", response_model=InfluencerList, responses=error_schema_responses(400),
            summary="Search influencers: filters, a sort order, keyset pages")
def list_influencers(
    core: CoreDep,
    domain: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    q: TextQuery = None,
    uid: TextQuery = None,
    fans_min: Number = None,
    fans_max: Number = None,
    region: TextQuery = None,
    tag: TextQuery = None,
    has_contact: bool = False,
    status: Annotated[str | None, Query(pattern="^(" + "|".join(STATUSES) + ")$")] = None,
    growth_7d_min: Number = None,
    growth_30d_min: Number = None,
    sort: SortName = finder.DEFAULT_SORT,
    limit: Annotated[int, Query(ge=1, le=finder.MAX_LIMIT)] = 50,
    after: Annotated[str | None, Query(max_length=400, description="the `next` of the previous page")] = None,
) -> InfluencerList:
    chosen = SelectionIn(domain=domain, q=q, uid=uid, fans_min=fans_min, fans_max=fans_max, region=region, tag=tag,
                         has_contact=has_contact, status=status, growth_7d_min=growth_7d_min,
                         growth_30d_min=growth_30d_min).selection()
    page = finder.search(core.conn, chosen, sort=sort, limit=limit, after=after)
    return InfluencerList(items=[influencer_out(row) for row in page.rows], next=page.next)


@router.get("/influencers/{uid:path}", response_model=InfluencerDetail, responses=error_schema_responses(404),
            summary="One influencer: every field, its raw data, its last crawl, its export file, its fans history")
def get_influencer(uid: Annotated[str, Path(min_length=1, max_length=255)], core: CoreDep) -> InfluencerDetail:
    found = finder.detail(core.conn, uid)
    if found is None:
        raise ApiError(404, "influencer_not_found", f"no influencer with uid {uid!r}")
    shown = found["influencer"]
    return InfluencerDetail(
        influencer=influencer_out(shown), source_page=shown.get("source_page"), raw_data=shown.get("raw_data"),
        last_crawl=CrawlOut(**utc(found["last_crawl"])) if found["last_crawl"] else None,
        export=ExportFileOut(**utc(found["export"])) if found["export"] else None,
        history=[HistoryPoint(**utc(point)) for point in found["history"]],
    )


@router.get("/searches", response_model=list[SavedSearch], summary="Saved searches, by name")
def list_searches(core: CoreDep) -> list[SavedSearch]:
    return [saved_out(row) for row in selections.saved(core.conn)]


@router.put("/searches/{name}", response_model=SavedSearch, responses=error_schema_responses(400, 415),
            summary="Save (or replace) a search by name")
def put_search(name: SearchName, body: SelectionIn, core: CoreDep) -> SavedSearch:
    return saved_out(selections.save(core.conn, name, body.selection()))


@router.delete("/searches/{name}", status_code=204, responses=error_schema_responses(400, 404, 415),
               summary="Forget a saved search")
def delete_search(name: SearchName, core: CoreDep) -> Response:
    if not selections.delete(core.conn, name):
        raise ApiError(404, "search_not_found", f"no saved search named {name!r}")
    return Response(status_code=204)


def saved_out(row: dict[str, Any]) -> SavedSearch:
    return SavedSearch(name=row["name"], filter=Selection.from_json(row["filter"]).filters,
                       updated_at=as_utc(row["updated_at"]))


def utc(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its naive UTC datetimes marked as UTC."""
    return {key: as_utc(value) for key, value in row.items()}


def influencer_out(row: dict[str, Any]) -> InfluencerOut:
    return InfluencerOut(**{key: row[key] for key in InfluencerOut.model_fields} | {
        "ingested_at": as_utc(row["ingested_at"]), "updated_at": as_utc(row["updated_at"])})
