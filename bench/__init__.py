"""Benchmarks: every scenario against the real service (`python -m app`) and a bare
FastAPI/uvicorn baseline, interleaved, reported as figures and per-pair ratios.

Run with `uv run python -m bench` (see docs/benchmarks.md)."""
