"""The central server's one expected error."""

from hub.core.errors import HubError


class CentralError(HubError):
    """A request or command the central server refuses, said in one line."""
