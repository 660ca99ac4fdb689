"""The one shape of a check's answer, for `hub doctor` and every part's own checks.

A :class:`Finding` is ok, warn (works, but look at it), fail (something the hub
needs is broken) or skip (does not apply to this hub). Its detail and hint are
English with ``%(name)s`` fields, marked for the Khmer catalogue, so the report
translates them before the values go in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclass(frozen=True)
class Finding:
    #: The check (``"database"``) or the probe (``"service nginx"``) that found it.
    name: str
    status: str
    detail: str
    values: dict[str, Any] = field(default_factory=dict)
    hint: str = ""
    hint_values: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def text(self) -> str:
        """The detail in English with its values in."""
        return self.detail % self.values if self.values else self.detail


@dataclass
class Checkup:
    """What the checks of one doctor run share.

    The configuration check fills in ``settings`` and the database check ``db``
    (read-only); the checks after them use these.
    """

    config: str | None
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    settings: Any = None
    db: Any = None


def verdict(name: str, ok: bool, detail: str, hint: str = "") -> Finding:
    """A probe's answer: ok, or failed with a fix (the hint only when it failed)."""
    return Finding(name, OK if ok else FAIL, detail, hint="" if ok else hint)
