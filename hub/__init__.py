"""Commune hub: a Raspberry Pi server for a Cambodian commune office."""

__version__ = "0.1.0"
