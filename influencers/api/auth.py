"""Bearer token on every endpoint but /healthz: `Authorization: Bearer <INFLUENCERS_API_TOKEN>`.

The comparison is constant-time (`hmac.compare_digest` on bytes). With no token configured the
server only runs on loopback (see `command.py`), answers only loopback Host names (`guards.py`)
and this check lets every request through.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from influencers.api.errors import ApiError

bearer = HTTPBearer(auto_error=False, description="the value of INFLUENCERS_API_TOKEN")


async def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> None:
    expected: str | None = request.app.state.config.api_token
    if expected is None:
        return
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise ApiError(
            401, "unauthenticated",
            "missing or wrong bearer token (send Authorization: Bearer <INFLUENCERS_API_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
