"""The container test: the real image and compose project on a real Docker engine.

Deselected from the default `uv run pytest`; run it with `uv run pytest -m container`.
"""
