"""A module that fails while importing."""

raise RuntimeError("missing configuration for this bot")
