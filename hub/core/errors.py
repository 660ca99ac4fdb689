"""The one base class for errors a technician or clerk is expected to see."""


class HubError(Exception):
    """An expected failure: printed as one plain line, never as a traceback."""


class DiskFull(HubError):
    """The data disk has no room left: new records and media are refused until space is freed."""


class Busy(HubError):
    """The hub has as much work as it takes right now (conversions in line): try again shortly."""
