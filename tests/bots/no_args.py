"""A bot that takes no argument: a start-up error."""


async def bot() -> None:
    return None
