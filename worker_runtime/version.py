"""The runtime's version, apart from `__init__` so modules can read it without importing the
whole public API (the heartbeat record carries it)."""

__version__ = "0.1.0"
