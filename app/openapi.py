"""The OpenAPI schema, made exact: header and query parameters are never `null` (an absent
header is not a null one), and when `API_KEY` is set the session routes declare bearer auth."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

NULL = {"type": "null"}
AUTH_TAG = "sessions"


def install_openapi(app: FastAPI, bearer_auth: bool) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            _drop_null_parameters(schema)
            if bearer_auth:
                _declare_bearer(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in schema.get("paths", {}).values() for op in path.values()]


def _drop_null_parameters(schema: dict[str, Any]) -> None:
    for operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            param_schema = parameter.get("schema", {})
            options = param_schema.get("anyOf")
            if options and NULL in options:
                rest = [option for option in options if option != NULL]
                if len(rest) == 1:
                    merged = {k: v for k, v in param_schema.items() if k != "anyOf"}
                    parameter["schema"] = {**rest[0], **merged}


def _declare_bearer(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "The service's API_KEY.",
    }
    for operation in _operations(schema):
        if AUTH_TAG in operation.get("tags", []):
            operation["security"] = [{"apiKey": []}]
