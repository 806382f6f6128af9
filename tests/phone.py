"""Phone providers as they behave, for tests: each signs its webhook the way the provider
computes its signature (written here from the providers' own validators, independently of
botdock's code), sends the webhook the provider sends, and speaks its media-stream protocol
(`connected`/`start`/`media`/`dtmf`/`stop`, 8 kHz mu-law; Exotel 16-bit PCM).

- Twilio (twilio-python `RequestValidator`): base64 HMAC-SHA1 of the URL followed by each POST
  field's name and value, names sorted; header `X-Twilio-Signature`.
- Telnyx (telnyx-python `verify_webhook_signature`): Ed25519 over `{timestamp}|{raw body}`;
  headers `telnyx-signature-ed25519` (base64) and `telnyx-timestamp`.
- Plivo (plivo-python `validate_v3_signature`): base64 HMAC-SHA256 over
  `{url}?{sorted query}[.]{sorted name+value of each POST field}.{nonce}`; headers
  `X-Plivo-Signature-V3` and `X-Plivo-Signature-V3-Nonce`.
- Exotel: signs nothing; botdock takes a shared secret as HTTP Basic auth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SILENCE_MULAW = base64.b64encode(b"\xff" * 160).decode()
TONE_MULAW = base64.b64encode(bytes(range(0, 160))).decode()
TONE_PCM = base64.b64encode(bytes(range(0, 256)) + bytes(range(0, 64))).decode()


@dataclass
class Credentials:
    """Test credentials for every provider, and the settings that give them to botdock."""

    twilio_token: str = field(default_factory=lambda: secrets.token_hex(16))
    telnyx_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    plivo_token: str = field(default_factory=lambda: secrets.token_hex(20))
    exotel_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @property
    def telnyx_public(self) -> str:
        raw = self.telnyx_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def settings(self) -> dict[str, str]:
        return {
            "TWILIO_AUTH_TOKEN": self.twilio_token,
            "TELNYX_PUBLIC_KEY": self.telnyx_public,
            "PLIVO_AUTH_TOKEN": self.plivo_token,
            "EXOTEL_WEBHOOK_SECRET": self.exotel_secret,
        }


def twilio_signature(token: str, url: str, form: dict[str, str]) -> str:
    data = url + "".join(name + form[name] for name in sorted(form))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def plivo_signature(token: str, url: str, form: dict[str, str], nonce: str) -> str:
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    if form:
        signed = f"{base}?{query}" + ("." if query else "")
        signed += "".join(name + form[name] for name in sorted(form))
    else:
        signed = base + (f"?{query}" if query else "")
    mac = hmac.new(token.encode(), f"{signed}.{nonce}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class Call:
    """One call of one provider: ids, numbers, and its media-stream messages."""

    provider: str
    call_id: str
    stream_id: str
    caller: str = "+15550001111"
    callee: str = "+15550002222"

    @classmethod
    def new(cls, provider: str) -> Call:
        ids = {
            "twilio": ("CA" + secrets.token_hex(16), "MZ" + secrets.token_hex(16)),
            "telnyx": ("v3:" + secrets.token_urlsafe(30), secrets.token_hex(16)),
            "plivo": (
                "3b1f6d0c-" + secrets.token_hex(2) + "-4a4e-9c3f-" + secrets.token_hex(6),
                "20170ada-" + secrets.token_hex(2) + "-4c6f-a1a5-" + secrets.token_hex(6),
            ),
            "exotel": (secrets.token_hex(16), secrets.token_hex(16)),
        }[provider]
        return cls(provider, *ids)

    # -- the webhook -----------------------------------------------------------------------

    def webhook_params(self) -> dict[str, str]:
        if self.provider == "twilio":
            return {
                "CallSid": self.call_id,
                "AccountSid": "AC" + "0" * 32,
                "From": self.caller,
                "To": self.callee,
                "CallStatus": "ringing",
                "Direction": "inbound",
            }
        if self.provider == "telnyx":
            return {
                "CallSid": self.call_id,
                "AccountSid": "f5586561-8ff0-4291-a51b-c7dfe4139ff9",
                "From": self.caller,
                "To": self.callee,
                "CallStatus": "ringing",
            }
        if self.provider == "plivo":
            return {
                "CallUUID": self.call_id,
                "From": self.caller,
                "To": self.callee,
                "CallStatus": "ringing",
                "Direction": "inbound",
                "Event": "StartApp",
            }
        return {
            "CallSid": self.call_id,
            "CallFrom": self.caller,
            "CallTo": self.callee,
            "Direction": "incoming",
        }

    def webhook(
        self, base: str, creds: Credentials | None, *, url_base: str | None = None
    ) -> httpx.Request:
        """The provider's webhook to `base`, signed with `creds` (None: unsigned) over the URL
        the provider thinks it calls (`url_base`, by default `base`)."""
        path = f"/telephony/{self.provider}"
        signed_url = (url_base or base) + path
        params = self.webhook_params()
        headers: dict[str, str] = {}
        if self.provider == "exotel":
            url = f"{base}{path}?{urlencode(params)}"
            if creds is not None:
                auth = base64.b64encode(f"botdock:{creds.exotel_secret}".encode()).decode()
                headers["Authorization"] = f"Basic {auth}"
            return httpx.Request("GET", url, headers=headers)
        body = urlencode(params)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        if creds is not None:
            if self.provider == "twilio":
                headers["X-Twilio-Signature"] = twilio_signature(
                    creds.twilio_token, signed_url, params
                )
            elif self.provider == "telnyx":
                stamp = str(int(time.time()))
                signature = creds.telnyx_key.sign(f"{stamp}|{body}".encode())
                headers["telnyx-timestamp"] = stamp
                headers["telnyx-signature-ed25519"] = base64.b64encode(signature).decode()
            else:
                nonce = secrets.token_hex(10)
                headers["X-Plivo-Signature-V3-Nonce"] = nonce
                headers["X-Plivo-Signature-V3"] = plivo_signature(
                    creds.plivo_token, signed_url, params, nonce
                )
        return httpx.Request("POST", base + path, headers=headers, content=body.encode())

    # -- the media stream ------------------------------------------------------------------

    def handshake(self, call_id: str | None = None) -> list[dict[str, Any]]:
        call_id = call_id or self.call_id
        if self.provider == "twilio":
            return [
                {"event": "connected", "protocol": "Call", "version": "1.0.0"},
                {
                    "event": "start",
                    "sequenceNumber": "1",
                    "start": {
                        "streamSid": self.stream_id,
                        "callSid": call_id,
                        "accountSid": "AC" + "0" * 32,
                        "tracks": ["inbound"],
                        "customParameters": {"from_number": self.caller, "to_number": self.callee},
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": 8000,
                            "channels": 1,
                        },
                    },
                    "streamSid": self.stream_id,
                },
            ]
        if self.provider == "telnyx":
            return [
                {"event": "connected", "version": "1.0.0"},
                {
                    "event": "start",
                    "sequence_number": "1",
                    "start": {
                        "call_control_id": call_id,
                        "from": self.caller,
                        "to": self.callee,
                        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
                    },
                    "stream_id": self.stream_id,
                },
            ]
        if self.provider == "plivo":
            return [
                {
                    "event": "start",
                    "sequenceNumber": 0,
                    "start": {
                        "streamId": self.stream_id,
                        "callId": call_id,
                        "accountId": "MA" + "0" * 18,
                        "tracks": ["inbound"],
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
                    },
                }
            ]
        return [
            {"event": "connected"},
            {
                "event": "start",
                "sequence_number": "1",
                "stream_sid": self.stream_id,
                "start": {
                    "stream_sid": self.stream_id,
                    "call_sid": call_id,
                    "account_sid": "exotel-account",
                    "from": self.caller,
                    "to": self.callee,
                    "custom_parameters": {},
                    "media_format": {
                        "encoding": "audio/x-raw",
                        "sample_rate": "8000",
                        "bit_rate": "16",
                    },
                },
            },
        ]

    @property
    def audio(self) -> str:
        return TONE_PCM if self.provider == "exotel" else TONE_MULAW

    def media(self, payload: str | None = None) -> dict[str, Any]:
        media = {"payload": payload or self.audio}
        if self.provider == "twilio":
            return {"event": "media", "streamSid": self.stream_id, "media": media}
        if self.provider == "telnyx":
            return {"event": "media", "stream_id": self.stream_id, "media": media}
        if self.provider == "plivo":
            return {"event": "media", "streamId": self.stream_id, "media": media}
        return {"event": "media", "stream_sid": self.stream_id, "media": media}

    def dtmf(self, digit: str) -> dict[str, Any]:
        if self.provider == "twilio":
            return {"event": "dtmf", "streamSid": self.stream_id, "dtmf": {"digit": digit}}
        if self.provider == "telnyx":
            return {"event": "dtmf", "stream_id": self.stream_id, "dtmf": {"digit": digit}}
        if self.provider == "plivo":
            return {"event": "dtmf", "streamId": self.stream_id, "dtmf": {"digit": digit}}
        return {"event": "dtmf", "stream_sid": self.stream_id, "dtmf": {"digit": digit}}

    def played(self, message: dict[str, Any]) -> str | None:
        """The audio payload of a message that plays audio to the caller, else None."""
        event = "playAudio" if self.provider == "plivo" else "media"
        if message.get("event") != event:
            return None
        payload: str = message["media"]["payload"]
        return payload


def stream_url(provider: str, answer: httpx.Response) -> str:
    """The media-stream URL in a webhook's answer (the provider's markup)."""
    if provider == "exotel":
        url: str = answer.json()["url"]
        return url
    import xml.etree.ElementTree as ET

    root = ET.fromstring(answer.text)
    stream = root.find(".//Stream")
    assert stream is not None, answer.text
    return stream.get("url") or (stream.text or "").strip()


def json_text(message: dict[str, Any]) -> str:
    return json.dumps(message)
