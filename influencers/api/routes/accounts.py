"""Accounts: list (never a password, a cookie or a proxy's credentials), add with an identity,
change the identity, disable with a reason, enable.

The password and the proxy URL arrive in the request body only; they go straight to the core,
which encrypts them. They are never returned, logged, or put in an error message: responses
show the proxy's ``scheme://host:port``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response

from influencers.api.deps import Core, CoreDep
from influencers.api.errors import error_schema_responses
from influencers.api.schemas import MAX_INT, Account, AccountIn, DisableIn, EnableIn, IdentityIn, as_utc
from influencers.core.account_model import Account as CoreAccount
from influencers.core.account_model import IdentityView
from influencers.core.budgets import Budget, BudgetStore
from influencers.core.credentials import CredentialCipher
from influencers.core.identities import IdentityStore, check_headers, parse_proxy_url, parse_user_agent

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/accounts", tags=["accounts"])
AccountId = Annotated[int, Path(ge=1, le=MAX_INT, description="account id")]

#: Body field -> `IdentityStore.set` argument.
IDENTITY_FIELDS = {"proxy": "proxy_url", "user_agent": "user_agent", "headers": "headers"}
_PARSERS = {
    "proxy": lambda url: parse_proxy_url(url)[0],
    "user_agent": parse_user_agent,
    "headers": lambda headers: check_headers(headers.items()),
}


@router.get("", response_model=list[Account],
            summary="The account pool with status, reason, quota left today and identity (proxy host only)")
def list_accounts(core: CoreDep) -> list[Account]:
    return accounts_out(core, core.accounts().list())


@router.post("", status_code=201, response_model=Account, responses=error_schema_responses(400, 409, 415),
             summary="Add an account, optionally with its identity; the password and the proxy URL are stored"
                     " encrypted and never returned")
def add_account(body: AccountIn, response: Response, core: CoreDep) -> Account:
    identity = _identity(body, {name for name in IDENTITY_FIELDS if getattr(body, name)})  # null, {}: none
    manager = core.accounts(with_cipher=True)
    account_id = manager.add(body.username, body.password, body.daily_export_limit)
    if identity:
        identities(core, with_cipher=True).set(account_id, **identity)
    logger.info("account %r added with id %s", body.username.strip(), account_id, extra={"account_id": account_id})
    response.headers["Location"] = f"/api/v1/accounts/{account_id}"
    return accounts_out(core, [manager.get(account_id)])[0]


@router.put("/{account_id}/identity", response_model=Account, responses=error_schema_responses(400, 404, 415),
            summary="Change an account's proxy, user agent or extra headers: a field left out is kept, null"
                    " removes it")
def set_identity(account_id: AccountId, body: IdentityIn, core: CoreDep) -> Account:
    identity = _identity(body, body.model_fields_set)
    store = identities(core, with_cipher=identity.get("proxy_url") is not None)
    changed = store.set(account_id, **identity)  # nothing given: the core's 400 says so
    logger.info("account %s: identity changed (%s)", account_id, changed, extra={"account_id": account_id})
    return accounts_out(core, [core.accounts().get(account_id)])[0]


@router.post("/{account_id}/disable", response_model=Account, responses=error_schema_responses(400, 404, 415),
             summary="Take an account out of rotation, with the reason")
def disable_account(account_id: AccountId, body: DisableIn, core: CoreDep) -> Account:
    manager = core.accounts()
    manager.disable(account_id, body.reason)
    logger.info("account %s disabled: %r", account_id, body.reason, extra={"account_id": account_id})
    return accounts_out(core, [manager.get(account_id)])[0]


@router.post("/{account_id}/enable", response_model=Account, responses=error_schema_responses(404, 415),
             summary="Put an account back in the pool (idle, reason and cool-down cleared)")
def enable_account(account_id: AccountId, core: CoreDep,
                   body: Annotated[EnableIn | None, Body()] = None) -> Account:
    manager = core.accounts()
    manager.enable(account_id, body.reason if body else None)
    logger.info("account %s enabled", account_id, extra={"account_id": account_id})
    return accounts_out(core, [manager.get(account_id)])[0]


def identities(core: Core, *, with_cipher: bool = False) -> IdentityStore:
    cipher = CredentialCipher.from_config(core.config) if with_cipher else None
    return IdentityStore(core.conn, cipher=cipher)


def _identity(body: AccountIn | IdentityIn, given: set[str]) -> dict[str, Any]:
    """`IdentityStore.set`'s arguments for the body's fields in ``given`` (null: remove it),
    validated now, so a bad one is a 400 before anything is written."""
    identity = {}
    for name, argument in IDENTITY_FIELDS.items():
        if name in given:
            value = getattr(body, name)
            identity[argument] = None if value is None else _PARSERS[name](value)
    return identity


def accounts_out(core: Core, accounts: Sequence[CoreAccount]) -> list[Account]:
    """The accounts as the API shows them, each with its identity (never the proxy's credentials)."""
    ids = [account.id for account in accounts]
    views = identities(core).display(ids)
    budgets = BudgetStore(core.conn, quota_day=core.config.quota_day).display(ids)
    return [account_out(account, views[account.id], budgets[account.id]) for account in accounts]


def account_out(account: CoreAccount, identity: IdentityView | None = None, budget: Budget | None = None) -> Account:
    identity = identity or IdentityView()
    budget = budget or Budget()
    return Account(
        id=account.id, username=account.username, status=account.status, status_reason=account.status_reason,
        daily_export_limit=account.daily_export_limit, today_export_count=account.today_export_count,
        remaining_quota=account.remaining_quota or 0, quota_date=account.quota_date,
        cooldown_until=as_utc(account.cooldown_until), last_used_at=as_utc(account.last_used_at),
        created_at=as_utc(account.created_at), proxy=identity.proxy_host, user_agent=identity.user_agent,
        proxy_health=identity.proxy_health, pages_today=budget.pages_today, pages_per_day=budget.pages_per_day,
        requests_per_minute=budget.requests_per_minute,
    )
