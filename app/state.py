"""What the routes reach through `request.app.state`: created in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from app.bot_loader import Bot, ReadinessCheck
from app.config import Settings
from app.daily import DailyClient
from app.loop_monitor import LoopMonitor
from app.sessions import SessionManager
from app.start_flow import StartFlow
from app.telephony.hangup import PhoneHangup
from app.telephony.providers import Provider
from app.webrtc import WebRTCPeers

if TYPE_CHECKING:
    from app.workers.pool import WorkerPool


@dataclass
class Services:
    settings: Settings
    bot: Bot
    manager: SessionManager
    flow: StartFlow
    readiness: ReadinessCheck
    loop: LoopMonitor
    peers: WebRTCPeers
    daily: DailyClient | None = None  # set when DAILY_API_KEY is
    providers: dict[str, Provider] = field(default_factory=dict)  # phone providers' checks
    hangup: PhoneHangup | None = None
    workers: WorkerPool | None = None  # set when SESSION_ISOLATION=process


def services(conn: HTTPConnection) -> Services:
    return conn.app.state.services  # type: ignore[no-any-return]
