"""One small class per phone provider: its webhook's signature check, the call it describes,
and the markup that sends the call's media stream to this service.

Each signature is computed as the provider's own request validator computes it (their
official SDKs: twilio-python's `RequestValidator`, telnyx-python's
`verify_webhook_signature`, plivo-python's `validate_v3_signature`); Exotel signs nothing, so
its webhook takes a shared secret as HTTP Basic auth, which Exotel's applets send from a URL's
`user:password@`. Without credentials a provider's webhook is served unauthenticated, and says
so (`authenticated`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from xml.sax.saxutils import quoteattr

from app.config import Settings

Params = Mapping[str, list[str]]
MAX_CALL_ID_LENGTH = 128


class SignatureError(Exception):
    """The webhook is not the provider's: a missing, stale or wrong signature."""


class CallDataError(Exception):
    """The webhook names no call this service can answer (no call id, or an unusable one)."""


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's webhook request as it was sent: `url` is the URL the provider requested
    (this service's public URL, path and query), which is what it signed."""

    method: str
    url: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    form: Params  # the form-encoded body's fields (empty for GET or JSON)
    query: Params

    def param(self, name: str) -> str | None:
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class PhoneCall:
    """The call a webhook describes. `call_id` becomes the session id."""

    provider: str
    call_id: str
    from_number: str | None = None
    to_number: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # everything the webhook sent


@dataclass(frozen=True)
class Markup:
    body: str
    media_type: str


class Provider:
    name: ClassVar[str]
    call_id_param: ClassVar[str]
    from_param: ClassVar[str] = "From"
    to_param: ClassVar[str] = "To"
    # The call id as the media stream's `start` event carries it (a path into the message).
    stream_call_id: ClassVar[tuple[str, ...]]
    stream_id: ClassVar[tuple[str, ...]]

    def __init__(self, credential: Any) -> None:
        self._credential = credential  # what verifies its webhooks; None: nothing is checked

    @property
    def authenticated(self) -> bool:
        return self._credential is not None

    def verify(self, request: WebhookRequest) -> None:
        """Raise `SignatureError` unless the request is the provider's (when credentials are
        set; without them every request passes)."""
        if self._credential is not None:
            self._check(request, self._credential)

    def _check(self, request: WebhookRequest, credential: Any) -> None:
        raise NotImplementedError

    def call(self, request: WebhookRequest) -> PhoneCall:
        call_id = request.param(self.call_id_param)
        if not call_id:
            raise CallDataError(f"the webhook sent no {self.call_id_param}")
        if len(call_id) > MAX_CALL_ID_LENGTH or not call_id.isprintable() or "/" in call_id:
            raise CallDataError(f"{self.call_id_param} is not a usable call id")
        params = {key: values[0] for key, values in {**request.query, **request.form}.items()}
        return PhoneCall(
            self.name,
            call_id,
            request.param(self.from_param),
            request.param(self.to_param),
            params,
        )

    def answer(self, stream_url: str, call: PhoneCall) -> Markup:
        raise NotImplementedError

    def busy(self) -> Markup | None:
        """What a full instance answers; None: HTTP 503, which the provider's fallback takes."""
        return None


def _xml(inner: str) -> Markup:
    return Markup(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Response>{inner}</Response>', "application/xml"
    )


class Twilio(Provider):
    """TwiML `<Connect><Stream>`: the stream URL keeps its path (Twilio drops a query), and the
    caller's numbers ride as `<Parameter>`s, which arrive in the `start` event's
    `customParameters` (Pipecat promotes `from_number`/`to_number`)."""

    name = "twilio"
    call_id_param = "CallSid"
    stream_call_id = ("start", "callSid")
    stream_id = ("start", "streamSid")

    def _check(self, request: WebhookRequest, credential: Any) -> None:
        given = request.headers.get("x-twilio-signature")
        if not given:
            raise SignatureError("no X-Twilio-Signature header")
        # Twilio signs the URL with or without the default port, so both are tried.
        for url in {_without_port(request.url), _with_port(request.url)}:
            if hmac.compare_digest(twilio_signature(credential, url, request.form), given):
                return
        raise SignatureError("X-Twilio-Signature does not match this request")

    def answer(self, stream_url: str, call: PhoneCall) -> Markup:
        parameters = "".join(
            f"<Parameter name={quoteattr(name)} value={quoteattr(value)}/>"
            for name, value in (("from_number", call.from_number), ("to_number", call.to_number))
            if value
        )
        return _xml(f"<Connect><Stream url={quoteattr(stream_url)}>{parameters}</Stream></Connect>")

    def busy(self) -> Markup:
        return _xml('<Reject reason="busy"/>')


def twilio_signature(auth_token: str, url: str, form: Params) -> str:
    """base64(HMAC-SHA1(auth token, URL + each POST field's name and value, names sorted))."""
    data = url + "".join(name + value for name in sorted(form) for value in sorted(set(form[name])))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class Telnyx(Provider):
    """TeXML `<Connect><Stream>` (bidirectional RTP, as Pipecat's runner answers). Telnyx signs
    each webhook with Ed25519 over `{telnyx-timestamp}|{raw body}`."""

    name = "telnyx"
    call_id_param = "CallSid"  # TeXML's CallSid is the call control id the stream carries
    stream_call_id = ("start", "call_control_id")
    stream_id = ("stream_id",)

    def __init__(self, public_key: str | None, tolerance_secs: int) -> None:
        super().__init__(base64.b64decode(public_key) if public_key else None)
        self._tolerance = tolerance_secs

    def _check(self, request: WebhookRequest, credential: Any) -> None:
        signature = request.headers.get("telnyx-signature-ed25519")
        stamp = request.headers.get("telnyx-timestamp")
        if not signature or not stamp:
            raise SignatureError("no telnyx-signature-ed25519 or telnyx-timestamp header")
        try:
            sent = int(stamp)
        except ValueError:
            raise SignatureError("telnyx-timestamp is not a Unix time") from None
        if abs(time.time() - sent) > self._tolerance:
            raise SignatureError(
                f"telnyx-timestamp is more than {self._tolerance}s away from this server's clock"
            )
        try:
            raw = base64.b64decode(signature, validate=True)
        except binascii.Error:
            raise SignatureError("telnyx-signature-ed25519 is not base64") from None
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(credential).verify(
                raw, stamp.encode() + b"|" + request.body
            )
        except (InvalidSignature, ValueError):
            raise SignatureError("telnyx-signature-ed25519 does not match this request") from None

    def answer(self, stream_url: str, call: PhoneCall) -> Markup:
        return _xml(
            f'<Connect><Stream url={quoteattr(stream_url)} bidirectionalMode="rtp"></Stream>'
            "</Connect>"
        )

    def busy(self) -> Markup:
        return _xml('<Reject reason="busy"/>')


class Plivo(Provider):
    """Plivo XML `<Stream bidirectional="true">`. Plivo signs with its V3 scheme:
    base64(HMAC-SHA256(auth token, URL-for-signing + "." + nonce)); X-Plivo-Signature-V3 may
    hold several signatures, comma-separated."""

    name = "plivo"
    call_id_param = "CallUUID"
    stream_call_id = ("start", "callId")
    stream_id = ("start", "streamId")

    def _check(self, request: WebhookRequest, credential: Any) -> None:
        given = request.headers.get("x-plivo-signature-v3")
        nonce = request.headers.get("x-plivo-signature-v3-nonce")
        if not given or not nonce:
            raise SignatureError("no X-Plivo-Signature-V3 or X-Plivo-Signature-V3-Nonce header")
        expected = plivo_signature(credential, request.method, request.url, request.form, nonce)
        if not any(hmac.compare_digest(expected, part.strip()) for part in given.split(",")):
            raise SignatureError("X-Plivo-Signature-V3 does not match this request")

    def answer(self, stream_url: str, call: PhoneCall) -> Markup:
        return _xml(
            '<Stream bidirectional="true" keepCallAlive="true" '
            f'contentType="audio/x-mulaw;rate=8000">{_text(stream_url)}</Stream>'
        )

    def busy(self) -> Markup:
        return _xml('<Hangup reason="busy"/>')


def plivo_signature(auth_token: str, method: str, url: str, form: Params, nonce: str) -> str:
    """Plivo's V3 signature, built as plivo-python's `validate_v3_signature` builds it."""
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    query_string = "&".join(
        "&".join(f"{key}={value}" for value in sorted(query[key])) for key in sorted(query)
    )
    if method.upper() == "GET" or not form:
        signed = base + ("?" + query_string if query_string else "")
    else:
        signed = base + "?" + query_string + ("." if query_string else "")
        signed += "".join(
            "".join(f"{key}{value}" for value in sorted(form[key])) for key in sorted(form)
        )
    digest = hmac.new(auth_token.encode(), f"{signed}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Exotel(Provider):
    """Exotel's Voicebot applet, its URL set to this webhook (the applet's "dynamic" URL, which
    Exotel requests with the call's details and which answers the stream's `wss://` URL).
    Exotel signs no request: with `EXOTEL_WEBHOOK_SECRET` set, the webhook requires it as the
    password of HTTP Basic auth (`https://botdock:<secret>@host/telephony/exotel`)."""

    name = "exotel"
    call_id_param = "CallSid"
    from_param = "CallFrom"
    to_param = "CallTo"
    stream_call_id = ("start", "call_sid")
    stream_id = ("start", "stream_sid")

    def _check(self, request: WebhookRequest, credential: Any) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise SignatureError("no HTTP Basic credentials")
        try:
            _, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise SignatureError("malformed HTTP Basic credentials") from None
        if not hmac.compare_digest(password.encode(), str(credential).encode()):
            raise SignatureError("wrong HTTP Basic password")

    def answer(self, stream_url: str, call: PhoneCall) -> Markup:
        return Markup(json.dumps({"url": stream_url}), "application/json")


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is not None:
        return url
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter is not None else None


def providers(settings: Settings) -> dict[str, Provider]:
    """Every provider, with the credentials the settings hold."""
    return {
        provider.name: provider
        for provider in (
            Twilio(_secret(settings.twilio_auth_token)),
            Telnyx(settings.telnyx_public_key, settings.telnyx_timestamp_tolerance_secs),
            Plivo(_secret(settings.plivo_auth_token)),
            Exotel(_secret(settings.exotel_webhook_secret)),
        )
    }
