"""Secret values the tests hand to the service. `server_for` checks, for every server process
of the suite, that none of them ever appears in its log."""

API_KEY = "sk-test-0123456789abcdef"
FUZZ_API_KEY = "fuzz-key-7f3a9c"
ROOM_TOKEN = "daily-room-token-SECRET-42"

ALL = (API_KEY, FUZZ_API_KEY, ROOM_TOKEN)
