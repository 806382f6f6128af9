import os
from pathlib import Path

import pytest

from app.config import SessionMode, Settings, SettingsError, load_settings
from tests.launcher import SETTINGS
from tests.project import ROOT
from tests.settings import explicit_settings, settings_from_file


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No botdock setting from the shell (in any case) and no `.env` but the test's own."""
    for name in list(os.environ):
        if name.upper() in SETTINGS:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_match_the_spec() -> None:
    s = load_settings()
    assert s.session_mode is SessionMode.AUTO
    assert (s.bot_module, s.host, s.port) == ("bot", "0.0.0.0", 8080)
    assert (s.max_sessions, s.session_timeout_secs, s.drain_timeout_secs) == (10, 7200, 300)
    assert s.max_body_bytes == 65536
    assert s.api_key is None and s.daily_api_key is None
    assert (s.log_level, s.log_format) == ("INFO", "text")
    assert s.daily_api_url == "https://api.daily.co/v1"


def test_invalid_session_mode_names_the_variable_and_allowed_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SESSION_MODE", "telepathy")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == (
        "invalid configuration: SESSION_MODE: Input should be 'auto', 'pipecat', 'daily' or "
        "'websocket' (got 'telepathy')"
    )


def test_max_sessions_below_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_SESSIONS", "0")
    with pytest.raises(SettingsError, match="MAX_SESSIONS: Input should be greater than or equal"):
        load_settings()


def test_dotenv_is_read_and_the_real_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SESSION_MODE=websocket\nMAX_SESSIONS=3\n")
    monkeypatch.setenv("MAX_SESSIONS", "5")
    s = load_settings()
    assert s.session_mode is SessionMode.WEBSOCKET
    assert s.max_sessions == 5


def test_empty_secret_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "")
    monkeypatch.setenv("DAILY_API_KEY", "  ")
    s = load_settings()
    assert s.api_key is None and s.daily_api_key is None


def test_secret_values_are_not_echoed_in_errors_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "sk-very-secret")
    assert "sk-very-secret" not in repr(load_settings())


def test_mode_and_log_level_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_MODE", "Daily")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    s = load_settings()
    assert s.session_mode is SessionMode.DAILY and s.log_level == "DEBUG"


def test_daily_settings_defaults_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.daily_api_url == "https://api.daily.co/v1"
    assert (s.daily_connect_timeout_secs, s.daily_read_timeout_secs) == (5, 10)
    assert (s.daily_start_timeout_secs, s.daily_room_expiry_secs) == (20, None)
    monkeypatch.setenv("DAILY_ROOM_EXPIRY_SECS", "")
    assert load_settings().daily_room_expiry_secs is None
    monkeypatch.setenv("DAILY_API_URL", "api.daily.co")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == (
        "invalid configuration: DAILY_API_URL: Value error, must be an http:// or https:// URL "
        "(got 'api.daily.co')"
    )


def test_env_example_and_readme_document_every_daily_setting() -> None:
    names = [n for n in Settings.model_fields if n.startswith("daily_")]
    assert len(names) == 6
    example = settings_from_file(ROOT / ".env.example")
    defaults = explicit_settings()
    assert [getattr(example, n) for n in names] == [getattr(defaults, n) for n in names]
    readme = (ROOT / "README.md").read_text()
    env_example = (ROOT / ".env.example").read_text()
    for name in names:
        assert f"\n{name.upper()}=" in env_example
        assert f"| `{name.upper()}` |" in readme


def test_ice_servers_are_none_by_default_and_read_as_pipecat_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().ice_servers == []
    monkeypatch.setenv("ICE_SERVERS", "stun:stun.example:3478, turn:turn.example")
    assert load_settings().ice_servers == [
        {"urls": "stun:stun.example:3478"},
        {"urls": "turn:turn.example"},
    ]
    monkeypatch.setenv(
        "ICE_SERVERS", '[{"urls": ["turn:t.example"], "username": "u", "credential": "c"}]'
    )
    assert load_settings().ice_servers == [
        {"urls": ["turn:t.example"], "username": "u", "credential": "c"}
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://stun.example", "ICE server URLs start with stun:, stuns:, turn: or turns:"),
        (
            '[{"urls": "turn:x", "password": "c"}]',
            "unknown key(s) ['password']: an ICE server has ['credential', 'urls', 'username']",
        ),
        ('[{"username": "u"}]', "each ICE server needs 'urls': a URL or a list of URLs"),
        ("[1]", "each ICE server must be a URL or an object with 'urls'"),
        ('[{"urls": "turn:x"', "not valid JSON: Expecting ',' delimiter at position 18"),
    ],
)
def test_invalid_ice_servers_name_the_variable_without_the_value(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("ICE_SERVERS", value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == f"invalid configuration: ICE_SERVERS: Value error, {message}"


def test_console_is_on_by_default_and_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().console_enabled is True
    monkeypatch.setenv("CONSOLE_ENABLED", "false")
    assert load_settings().console_enabled is False
    monkeypatch.setenv("CONSOLE_ENABLED", "sometimes")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == (
        "invalid configuration: CONSOLE_ENABLED: Input should be a valid boolean, unable to "
        "interpret input (got 'sometimes')"
    )


def test_the_published_image_turns_the_console_off_and_compose_turns_it_on() -> None:
    assert "CONSOLE_ENABLED=false" in (ROOT / "Dockerfile").read_text()
    assert "CONSOLE_ENABLED: ${CONSOLE_ENABLED:-true}" in (ROOT / "docker-compose.yml").read_text()


def test_isolation_settings_default_and_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (s.session_isolation, s.prewarm_workers) == ("inline", 2)
    assert (s.worker_max_sessions, s.worker_max_rss_mb) == (100, None)
    monkeypatch.setenv("SESSION_ISOLATION", " Process ")
    monkeypatch.setenv("WORKER_MAX_RSS_MB", "")
    s = load_settings()
    assert (s.session_isolation, s.worker_max_rss_mb) == ("process", None)
    bad = {
        "SESSION_ISOLATION": (
            "thread",
            "SESSION_ISOLATION: Input should be 'inline' or 'process' (got 'thread')",
        ),
        "PREWARM_WORKERS": (
            "-1",
            "PREWARM_WORKERS: Input should be greater than or equal to 0 (got '-1')",
        ),
        "WORKER_MAX_SESSIONS": (
            "0",
            "WORKER_MAX_SESSIONS: Input should be greater than or equal to 1 (got '0')",
        ),
        "WORKER_MAX_RSS_MB": (
            "8",
            "WORKER_MAX_RSS_MB: Input should be greater than or equal to 16 (got '8')",
        ),
    }
    for name, (given, message) in bad.items():
        with monkeypatch.context() as patch:
            patch.setenv(name, given)
            with pytest.raises(SettingsError) as err:
                load_settings()
            assert str(err.value) == f"invalid configuration: {message}"


def test_env_example_and_docs_document_every_isolation_setting() -> None:
    names = ["session_isolation", "prewarm_workers", "worker_max_sessions", "worker_max_rss_mb"]
    example = settings_from_file(ROOT / ".env.example")
    defaults = explicit_settings()
    assert [getattr(example, n) for n in names] == [getattr(defaults, n) for n in names]
    docs = (ROOT / "docs" / "configuration.md").read_text()
    for name in names:
        assert f"| `{name.upper()}` |" in docs
