"""A phone call's `call_data` as the bot gets it, and as it travels to a worker process.

With Pipecat installed it is Pipecat's `CallData` (its provider subclass where one exists,
`TelnyxCallData`, `ExotelCallData`), and it is also left where Pipecat's
`parse_telephony_websocket` looks for an earlier parse, so `create_transport()` builds that
provider's serializer from it without reading the stream again. Without Pipecat it is a dict
with the same keys. Between the server and a worker (`SESSION_ISOLATION=process`) it travels
as JSON (`plain`) and is typed again on the worker's side (`typed`).
"""

from __future__ import annotations

import importlib
from typing import Any


def typed(provider: str, data: dict[str, Any]) -> Any:
    """`data` (keys as the provider's wire names them: `from`, `to`) as the installed Pipecat's
    `CallData` class for `provider`; the dict itself without Pipecat."""
    model = _call_data_class(provider)
    return data if model is None else model.model_validate(data)


def plain(call_data: Any) -> dict[str, Any] | None:
    """`call_data` as JSON-ready data that `typed` takes back."""
    if call_data is None:
        return None
    dump = getattr(call_data, "model_dump", None)
    if dump is not None:
        dumped: dict[str, Any] = dump(by_alias=True, mode="json")
        return dumped
    return dict(call_data)


def leave_for_pipecat(websocket: Any, provider: str, call_data: Any) -> None:
    """Where Pipecat's `parse_telephony_websocket` finds an earlier parse (the releases that
    cache one); older releases read the replayed handshake instead."""
    if not isinstance(call_data, dict):
        websocket._pipecat_parsed_telephony = (provider, call_data)


def _call_data_class(provider: str) -> Any:
    try:
        types = importlib.import_module("pipecat.runner.types")
    except ModuleNotFoundError:
        return None
    specific = {"telnyx": "TelnyxCallData", "exotel": "ExotelCallData"}.get(provider)
    return getattr(types, specific or "CallData", None) or getattr(types, "CallData", None)
