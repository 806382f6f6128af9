"""Returns at once: the session machinery's own cost, nothing else."""

from app.arguments import SessionArguments


async def bot(args: SessionArguments) -> None:
    return None
