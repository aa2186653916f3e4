"""A faithful emulator of the PAI AIWorkSpace model-version API (independent of pai_operator)."""

__version__ = "0.1.0"
