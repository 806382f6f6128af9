"""Bots the benchmarks load with `BOT_MODULE=bench.bots.<name>`."""
