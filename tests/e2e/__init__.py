"""End-to-end tests: the real `python -m app` process started by `tests/launcher.py`, real
HTTP and WebSocket clients and real signals (marker `e2e`)."""
