"""One module per scenario, each with `async def run(ctx) -> list[Row]`."""
