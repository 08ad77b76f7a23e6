"""Accounts: list (never a password or a cookie), add, disable with a reason, enable.

The password arrives in the request body only; it goes straight to `AccountManager.add`, which
encrypts it. It is never returned, logged, or put in an error message.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from influencers.api.deps import CoreDep
from influencers.api.errors import error_schema_responses
from influencers.api.schemas import MAX_INT, Account, AccountIn, DisableIn, EnableIn, as_utc
from influencers.core.account_model import Account as CoreAccount

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/accounts", tags=["accounts"])
AccountId = Annotated[int, Path(ge=1, le=MAX_INT, description="account id")]


@router.get("", response_model=list[Account], summary="The account pool with status, reason and quota left today")
def list_accounts(core: CoreDep) -> list[Account]:
    return [account_out(account) for account in core.accounts().list()]


@router.post("", status_code=201, response_model=Account, responses=error_schema_responses(400, 409, 415),
             summary="Add an account; the password is stored encrypted and never returned")
def add_account(body: AccountIn, response: Response, core: CoreDep) -> Account:
    manager = core.accounts(with_cipher=True)
    account_id = manager.add(body.username, body.password, body.daily_export_limit)
    logger.info("account %r added with id %s", body.username.strip(), account_id, extra={"account_id": account_id})
    response.headers["Location"] = f"/api/v1/accounts/{account_id}"
    return account_out(manager.get(account_id))


@router.post("/{account_id}/disable", response_model=Account, responses=error_schema_responses(400, 404, 415),
             summary="Take an account out of rotation, with the reason")
def disable_account(account_id: AccountId, body: DisableIn, core: CoreDep) -> Account:
    manager = core.accounts()
    manager.disable(account_id, body.reason)
    logger.info("account %s disabled: %r", account_id, body.reason, extra={"account_id": account_id})
    return account_out(manager.get(account_id))


@router.post("/{account_id}/enable", response_model=Account, responses=error_schema_responses(404, 415),
             summary="Put an account back in the pool (idle, reason and cool-down cleared)")
def enable_account(account_id: AccountId, core: CoreDep,
                   body: Annotated[EnableIn | None, Body()] = None) -> Account:
    manager = core.accounts()
    manager.enable(account_id, body.reason if body else None)
    logger.info("account %s enabled", account_id, extra={"account_id": account_id})
    return account_out(manager.get(account_id))


def account_out(account: CoreAccount) -> Account:
    return Account(
        id=account.id, username=account.username, status=account.status, status_reason=account.status_reason,
        daily_export_limit=account.daily_export_limit, today_export_count=account.today_export_count,
        remaining_quota=account.remaining_quota or 0, quota_date=account.quota_date,
        cooldown_until=as_utc(account.cooldown_until), last_used_at=as_utc(account.last_used_at),
        created_at=as_utc(account.created_at),
    )
