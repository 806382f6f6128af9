"""A bot whose readyz() reports what READY says (a dict, as bots may answer)."""

READY = {"ready": False}


def readyz() -> dict[str, bool]:
    return READY


async def bot(args: object) -> None:
    return None
