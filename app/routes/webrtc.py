"""WebRTC offers, in the shapes Pipecat's runner and Pipecat Cloud's base image serve:

- `POST /api/offer` `{sdp, type, pc_id?, restart_pc?, request_data?}` → `{sdp, type, pc_id}`:
  a new session (or the one `POST /bot` announced under the same `x-daily-session-id`), or,
  with a known `pc_id`, a renegotiation of that peer; `PATCH /api/offer` `{pc_id, candidates}`
  trickles ICE candidates. Both need the API key, as every session route does.
- `POST`/`PATCH /sessions/{id}/api/offer?token=...`: the same for a session `POST /start`
  announced, whose single-use token is the credential (a browser never holds the API key);
  its renegotiations and candidates name the session's `pc_id`.
"""

from __future__ import annotations

import hmac
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from app.auth import check_api_key, check_origin, presented_key
from app.errors import ApiError, describe_validation
from app.exceptions import NotFound
from app.modes import Entry
from app.payloads import caller_session_id, read_json_object
from app.schemas import CandidatesAnswer, OfferAnswer, errors
from app.sessions import MAX_SESSION_ID_LENGTH, SessionKind, SessionState
from app.start_flow import StartAsk
from app.state import Services, services
from app.webrtc import Candidate, Offer, Peer, require

router = APIRouter()
_KEY_TAGS: list[str | Enum] = ["sessions"]  # the API key, as on every session route
# A session's own offer URL: its token or its peer's pc_id is the credential, not the API key.
_SESSION_TAGS: list[str | Enum] = ["webrtc"]

MAX_SDP_CHARS = 65536


class OfferRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)
    type: Literal["offer"]
    pc_id: str | None = Field(default=None, min_length=1, max_length=200)
    restart_pc: bool | None = None
    request_data: dict[str, Any] | None = Field(
        default=None,
        validation_alias=AliasChoices("request_data", "requestData"),
        description="Custom data for the bot (its `body`); `requestData` is accepted too.",
    )


class CandidateIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    candidate: str = Field(max_length=1024)
    sdp_mid: str | None = Field(default=None, max_length=64)
    sdp_mline_index: int | None = Field(default=None, ge=0, le=1024)


class CandidatesRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    pc_id: str = Field(min_length=1, max_length=200)
    candidates: list[CandidateIn] = Field(max_length=256)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, schema.pop("$defs", {}))}},
        }
    }


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """The schema with its `$defs` references replaced by what they name: in OpenAPI a
    request body's schema cannot reach its own `$defs`."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


_SESSION_ID = Annotated[str, Path(max_length=MAX_SESSION_ID_LENGTH)]


M = TypeVar("M", bound=BaseModel)


async def _checked(request: Request, model: type[M], *, api_key: bool) -> tuple[Services, M]:
    """Every WebRTC route's checks, in this order: `Origin`, the API key (the routes outside a
    session's URL), aiortc installed (501), then the body as `model`."""
    check_origin(request)
    if api_key:
        check_api_key(request)
    svc = services(request)
    require()
    return svc, await _parse(request, svc, model)


async def _parse(request: Request, svc: Services, model: type[M]) -> M:
    data = await read_json_object(
        request, svc.settings.max_body_bytes, svc.settings.client_timeout_secs
    )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe_validation(exc.errors())) from None


def _offer(parsed: OfferRequest) -> Offer:
    return Offer(parsed.sdp, parsed.type, parsed.pc_id, bool(parsed.restart_pc))


def _candidates(parsed: CandidatesRequest) -> list[Candidate]:
    return [Candidate(c.candidate, c.sdp_mid, c.sdp_mline_index) for c in parsed.candidates]


async def _renegotiate(svc: Services, peer: Peer, offer: Offer) -> Response:
    answer = await svc.peers.renegotiate(peer, offer)
    return OfferAnswer.model_validate(answer).response()


@router.post(
    "/api/offer",
    tags=_KEY_TAGS,
    summary="A WebRTC offer: starts a session (Pipecat's runner and Pipecat Cloud's shape)",
    response_model=OfferAnswer,
    responses=errors(400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 501, 503),
    openapi_extra=_body_schema(OfferRequest),
)
async def offer(request: Request) -> Response:
    svc, parsed = await _checked(request, OfferRequest, api_key=True)
    if parsed.pc_id is not None:
        return await _renegotiate(svc, svc.peers.find(parsed.pc_id), _offer(parsed))
    session_id = caller_session_id(request)
    announced = svc.manager.get(session_id) if session_id is not None else None
    claim = (
        session_id
        if announced is not None
        and announced.kind is SessionKind.WEBRTC
        and announced.state is SessionState.PENDING
        else None
    )
    _, answer = await svc.flow.start_webrtc(
        StartAsk(Entry.WEBRTC, body=parsed.request_data or {}, session_id=session_id),
        _offer(parsed),
        svc.peers,
        claim=claim,
        trusted=True,  # the API key was checked above
    )
    return OfferAnswer.model_validate(answer).response()


@router.patch(
    "/api/offer",
    tags=_KEY_TAGS,
    summary="Trickle ICE candidates to a WebRTC peer",
    response_model=CandidatesAnswer,
    responses=errors(401, 403, 404, 408, 413, 415, 422, 501),
    openapi_extra=_body_schema(CandidatesRequest),
)
async def candidates(request: Request) -> Response:
    svc, parsed = await _checked(request, CandidatesRequest, api_key=True)
    await svc.peers.add_candidates(svc.peers.find(parsed.pc_id), _candidates(parsed))
    return _SUCCESS.response()


_SUCCESS = CandidatesAnswer(status="success")


@router.post(
    "/sessions/{session_id:path}/api/offer",
    tags=_SESSION_TAGS,
    summary="The WebRTC offer of a session POST /start announced (its token in the URL)",
    response_model=OfferAnswer,
    responses=errors(400, 401, 403, 404, 408, 409, 413, 415, 422, 501, 503),
    openapi_extra=_body_schema(OfferRequest),
)
async def session_offer(
    request: Request, session_id: _SESSION_ID, token: str | None = None
) -> Response:
    svc, parsed = await _checked(request, OfferRequest, api_key=False)
    if parsed.pc_id is not None:  # the session's own peer: its pc_id is the credential
        return await _renegotiate(svc, svc.peers.find(parsed.pc_id, session_id), _offer(parsed))
    if svc.manager.get(session_id) is None:
        raise NotFound("unknown_session", f"no announced session {session_id}")
    _, answer = await svc.flow.start_webrtc(
        StartAsk(Entry.WEBRTC, body=parsed.request_data or {}),
        _offer(parsed),
        svc.peers,
        claim=session_id,
        claim_token=token,
        trusted=_has_api_key(request, svc),
    )
    return OfferAnswer.model_validate(answer).response()


@router.patch(
    "/sessions/{session_id:path}/api/offer",
    tags=_SESSION_TAGS,
    summary="Trickle ICE candidates to the WebRTC peer of a session",
    response_model=CandidatesAnswer,
    responses=errors(403, 404, 408, 413, 415, 422, 501),
    openapi_extra=_body_schema(CandidatesRequest),
)
async def session_candidates(request: Request, session_id: _SESSION_ID) -> Response:
    svc, parsed = await _checked(request, CandidatesRequest, api_key=False)
    peer = svc.peers.find(parsed.pc_id, session_id)
    await svc.peers.add_candidates(peer, _candidates(parsed))
    return _SUCCESS.response()


def _has_api_key(request: Request, svc: Services) -> bool:
    """The caller presented the service's API key (which stands for a session's token)."""
    expected = svc.settings.api_key
    given = presented_key(request)
    return (
        expected is not None
        and given is not None
        and hmac.compare_digest(given.encode(), expected.get_secret_value().encode())
    )
