"""A module without a bot function."""

GREETING = "hello"
