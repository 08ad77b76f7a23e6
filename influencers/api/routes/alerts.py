"""Alerts: what `python -m influencers alerter` recorded (`influencers.core.alerts`) and whether
each was delivered; as `alerts list`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from influencers.api.deps import CoreDep
from influencers.api.schemas import as_utc
from influencers.core.alerts import KINDS, AlertStore

router = APIRouter(prefix="/alerts", tags=["alerts"])


class AlertOut(BaseModel):
    id: int
    kind: str = Field(description="; ".join(f"{kind}: {meaning}" for kind, meaning in KINDS.items()))
    subject: str = Field(description="what it is about (an account id, a task id, a node); empty: the whole system")
    message: str
    created_at: datetime = Field(description="UTC")
    attempts: int = Field(description="deliveries tried")
    delivered_at: datetime | None = Field(description="UTC; null: not delivered yet")
    last_error: str | None = Field(description="why the last delivery failed (URLs named by service, never shown)")


class AlertList(BaseModel):
    alerts: list[AlertOut]


@router.get("", response_model=AlertList, summary="The latest alerts, newest first, with their delivery")
def list_alerts(core: CoreDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> AlertList:
    store = AlertStore(core.conn, core.config.quota_day, window=core.config.alerts.window)
    return AlertList(alerts=[
        AlertOut(id=alert.id, kind=alert.kind, subject=alert.subject, message=alert.message,
                 created_at=as_utc(alert.created_at), attempts=alert.attempts,
                 delivered_at=as_utc(alert.delivered_at) if alert.delivered_at else None,
                 last_error=alert.last_error)
        for alert in store.recent(limit)])
