"""Bot modules that the tests load through BOT_MODULE."""
