"""The per-address limits of the villagers' side as the web app applies them (counts in hub.limits)."""

from __future__ import annotations

from hub import limits
from hub.web.current import hub_context, hub_settings
from hub.web.security import client_address

#: How long the per-address limits' windows are, in seconds.
LIMIT_WINDOW = 3600


def may_send() -> bool:
    """Count one message from this address; False once it has sent feedback_per_hour this hour."""
    return limits.hit(hub_context().db, limits.SUBMIT, client_address(), hub_settings().feedback_per_hour,
                      LIMIT_WINDOW)


def receipt_missed() -> None:
    """Count a receipt or phone number from this address that matched nothing."""
    limits.hit(hub_context().db, limits.RECEIPT_MISS, client_address(), hub_settings().receipt_misses_per_hour,
               LIMIT_WINDOW)


def receipt_misses_used_up() -> bool:
    return limits.over(hub_context().db, limits.RECEIPT_MISS, client_address(),
                       hub_settings().receipt_misses_per_hour, LIMIT_WINDOW)
