"""A bot that warns the way libraries do. Pipecat shows its DeprecationWarnings inside a
`catch_warnings()` block with `simplefilter("always")` (Python hides them by default outside
`__main__`); this module does so once at import, before any session, and again inside each
session, where it also raises a plain UserWarning."""

import warnings

from app.arguments import SessionArguments


def deprecated(what: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"{what} is deprecated", DeprecationWarning, stacklevel=2)


deprecated("importing tests.bots.warner")


async def bot(args: SessionArguments) -> None:
    deprecated("calling warner's bot()")
    warnings.warn("warner's bot() says careful", UserWarning, stacklevel=1)
