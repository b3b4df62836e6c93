"""Prometheus metrics: HTTP requests by route template, and the ``/metrics`` endpoint
(open, or for the bearer of ``metrics_token`` when that is set)."""

from __future__ import annotations

import hmac
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatd.api.deps import AppSettings
from chatd.api.errors import ERROR_RESPONSE, ApiError

REQUESTS = Counter(
    "chatd_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "chatd_http_request_duration_seconds",
    "Time to answer HTTP requests.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

router = APIRouter(tags=["General"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={401: {**ERROR_RESPONSE, "description": "Not authenticated (metrics token set)"}},
)
async def metrics(request: Request, settings: AppSettings) -> Response:
    """Prometheus exposition format; with ``metrics_token`` set, only for its bearer."""
    if settings.metrics_token and not _bearer_matches(request, settings.metrics_token):
        response = ApiError(
            401,
            "A valid metrics token is required.",
            'Send "Authorization: Bearer <token>" with the token set in CHATD_METRICS_TOKEN.',
        ).response()
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _bearer_matches(request: Request, expected: str) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - started)
