"""botdock: a containerized service template for voice and chat bots."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("botdock")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"
