"""`RequestRoute`: a FastAPI route that, for an endpoint taking only the `Request` and
returning a `Response`, skips FastAPI's per-request handler.

That handler solves dependencies, reads and validates a body, and serializes the return
value. For such an endpoint it has nothing to do, yet it was a large part of a session
start's CPU (docs/benchmarks.md). The route is still an `APIRoute`, documented in the OpenAPI
schema from the same declaration; only its ASGI app is Starlette's `request_response`, which
calls the endpoint with the request and sends its response, inside the app's exception
handlers as before. What such an endpoint loses is FastAPI's own tracing spans for its
dependencies and endpoint, made only when an OpenTelemetry provider is configured (the
request's own span is still made).

Any other endpoint (with parameters, dependencies or a return value to serialize) is served
by FastAPI as usual.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import request_response


class RequestRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if _request_to_response(self):
            self.app = request_response(endpoint)


def _request_to_response(route: APIRoute) -> bool:
    """An async endpoint whose one parameter is the request and which returns a `Response`,
    with no dependency and no body size limit of its own."""
    signature = inspect.signature(route.endpoint, eval_str=True)
    returns = signature.return_annotation
    return (
        inspect.iscoroutinefunction(route.endpoint)
        and len(signature.parameters) == 1
        and route.dependant.request_param_name is not None
        and not route.dependant.dependencies
        and route.max_body_size is None
        and inspect.isclass(returns)
        and issubclass(returns, Response)
    )
