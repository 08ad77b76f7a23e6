"""The application factory: routers, auth, error handlers, dashboard.

`redirect_slashes` is off: Starlette's trailing-slash redirect builds its `Location` from the
request's Host header, which a DNS-rebinding page chooses; `/api/v1/accounts/` is a plain 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from influencers.api.auth import require_token
from influencers.api.availability import DatabaseGate
from influencers.api.deps import CoreDep
from influencers.api.errors import CatchAllMiddleware, error_schema_responses, install_error_handlers
from influencers.api.guards import LoopbackHostMiddleware, require_json
from influencers.api.query import reject_unknown_query
from influencers.api.routes import accounts, alerts, dashboard, influencers, metrics, reports, schedules, tasks
from influencers.api.schemas import Health
from influencers.core.config import Config

API_PREFIX = "/api/v1"
OPENAPI_PATH = "/openapi.json"


def create_app(config: Config) -> FastAPI:
    app = FastAPI(
        title="Influencer (达人) crawling system API",
        version="1.0.0",
        description="Tasks, accounts, reports and status over the same core as `python -m influencers`."
                    " Every endpoint but /healthz needs `Authorization: Bearer <INFLUENCERS_API_TOKEN>`;"
                    " every POST needs `Content-Type: application/json`, also without a body.",
        openapi_url=OPENAPI_PATH,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN, which these machines cannot reach
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.config = config
    app.state.database_gate = DatabaseGate()
    install_error_handlers(app)
    app.add_middleware(LoopbackHostMiddleware, enabled=config.api_token is None)
    app.add_middleware(CatchAllMiddleware)  # added last, so outermost: it also wraps the Host check

    api = APIRouter(prefix=API_PREFIX,
                    dependencies=[Depends(require_token), Depends(require_json), Depends(reject_unknown_query)],
                    responses=error_schema_responses(401, 422, 503))
    for module in (tasks, accounts, reports, influencers, schedules, alerts):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(metrics.router)  # at the root, where Prometheus looks; its own auth
    app.include_router(dashboard.router)
    app.mount("/static", dashboard.static_files(), name="static")

    @app.get("/healthz", response_model=Health, tags=["health"], responses=error_schema_responses(422, 503),
             dependencies=[Depends(reject_unknown_query)],
             summary="Liveness and database reachability (no auth); 503 while the database is away")
    def healthz(core: CoreDep) -> Health:
        with core.conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Health(status="ok", database="ok")

    return app
