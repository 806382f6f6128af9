"""The container test: the real image and compose project on a real Docker engine; and the
newcomer check (test_newcomer.py): the README's two commands in a stock Debian container.

Deselected from the default `uv run pytest`; run them with `uv run pytest -m container`.
"""
