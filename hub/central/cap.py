"""Common Alerting Protocol 1.2 messages as input for urgent broadcasts.

An officer may hand the central server an alert written by a warning service
as a CAP 1.2 XML message instead of filling the form. :func:`parse` reads it
with defusedxml (no DTDs, no entities, no external references: a "billion
laughs" or an external-entity file read is refused before anything is
expanded) and checks the fields the hubs use:

- ``<status>`` Actual or Exercise (Test, System and Draft are not broadcast);
- ``<msgType>`` Alert or Update (a publication), or Cancel (withdraws the
  publications of the alerts it ``<references>``);
- per ``<info>``: ``<urgency>``, ``<severity>`` and ``<certainty>`` from CAP's
  lists, ``<headline>`` (or ``<event>``) as the title in the ``<language>`` of
  the block (Khmer and English blocks both count), ``<description>`` and
  ``<instruction>`` as the text, ``<expires>`` (required here: an urgent
  broadcast must stop playing some time);
- a ``<resource>`` with an ``audio/*`` ``<mimeType>``: its sound is either
  inside the message (``<derefUri>``, base64) or a file the officer uploads
  beside it, named by the last part of its ``<uri>``. ``<size>`` and the SHA-1
  ``<digest>`` are checked when given.

Every refusal is a :class:`CapError` whose English message is in the Khmer
catalogue, so the console says it in the officer's language.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath

from hub.central.errors import CentralError
from hub.core.words import N_

NS = "urn:oasis:names:tc:emergency:cap:1.2"
#: Largest CAP message accepted (it may carry its audio inside, base64).
MAX_BYTES = 16 * 1024 * 1024

STATUSES = ("Actual", "Exercise")
ALL_STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
#: The fields an urgent broadcast carries, whether typed in the form or read from CAP.
CAP_FIELDS = ("urgency", "severity", "certainty", "headline", "event")

MESSAGES = {
    "too_big": N_("The CAP file is too large (at most 16 MB)."),
    "not_xml": N_("The file is not a readable XML document (%(detail)s)."),
    "unsafe": N_("The file declares a DTD or XML entities; they are refused for safety. Nothing was published."),
    "not_cap": N_("This is not a CAP 1.2 alert: its root must be <alert> in urn:oasis:names:tc:emergency:cap:1.2."),
    "missing": N_("The CAP message has no <%(field)s>."),
    "bad_value": N_("<%(field)s> is \u201c%(value)s\u201d; it must be one of: %(allowed)s."),
    "bad_time": N_("<%(field)s> \u201c%(value)s\u201d is not a date and time like 2026-12-02T16:30:00+07:00."),
    "expired": N_("This alert expired at %(value)s. Nothing was published."),
    "status": N_("Only Actual or Exercise alerts are broadcast; this one is %(value)s. Nothing was published."),
    "no_title": N_("The CAP message has no <headline> or <event> in Khmer or English."),
    "no_audio": N_("The CAP message has no <resource> with audio (a <mimeType> starting with audio/)."),
    "audio_missing": N_("Upload the audio file %(value)s named in the message's <resource> with it."),
    "bad_audio_data": N_("The audio inside the message (<derefUri>) is not valid base64."),
    "digest": N_("The audio %(value)s does not match the SHA-1 <digest> the message gives."),
    "size": N_("The audio %(value)s is not the <size> the message gives."),
    "no_expiry": N_("An urgent broadcast needs the time after which it stops playing."),
    "urgent_audio": N_("An urgent announcement needs a recording."),
    "no_reference": N_("This Cancel message names no alert this server has published."),
}


class CapError(CentralError):
    """A CAP message refused; ``message`` (English, in the catalogue) and ``values`` make the words."""

    def __init__(self, code: str, **values):
        self.code = code
        self.message = MESSAGES[code]
        self.values = {k: str(v) for k, v in values.items()}
        super().__init__(self.message % self.values if self.values else self.message)


@dataclass
class Alert:
    """What the central server takes from a CAP message."""

    identifier: str
    sender: str
    sent: str
    status: str
    msg_type: str
    references: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # title_km/en, body_km/en, urgency, severity, ..., expires_at
    audio: tuple[str, bytes, str] | None = None  # (name, content, mime type)

    @property
    def key(self) -> str:
        """How CAP names a message in another's <references>: sender,identifier,sent."""
        return f"{self.sender},{self.identifier},{self.sent}"


def _tag(name: str) -> str:
    return f"{{{NS}}}{name}"


def _text(el, name: str) -> str:
    found = el.find(_tag(name))
    return (found.text or "").strip() if found is not None and found.text else ""


def _required(el, name: str) -> str:
    value = _text(el, name)
    if not value:
        raise CapError("missing", field=name)
    return value


def _one_of(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise CapError("bad_value", field=name, value=value[:40], allowed=", ".join(allowed))
    return value


def cap_time(value: str, name: str) -> datetime:
    """A CAP date and time (with its offset; a trailing Z is taken too)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CapError("bad_time", field=name, value=value[:40]) from None
    if moment.tzinfo is None:
        raise CapError("bad_time", field=name, value=value[:40])
    return moment


def utc_text(moment: datetime) -> str:
    """The one text form the central tables keep times in (as :func:`hub.core.db.utcnow`)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _read_xml(content: bytes):
    import defusedxml
    from defusedxml import ElementTree

    if len(content) > MAX_BYTES:
        raise CapError("too_big")
    try:
        return ElementTree.fromstring(content, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden):
        raise CapError("unsafe") from None
    except ElementTree.ParseError as e:
        raise CapError("not_xml", detail=str(e)[:120]) from None


def _language(info) -> str:
    lang = (_text(info, "language") or "en-US").lower()
    return "km" if lang.startswith("km") else "en" if lang.startswith("en") else ""


def parse(content: bytes, uploads: dict[str, bytes] | None = None, now: datetime | None = None) -> Alert:
    """Read and check a CAP 1.2 message; *uploads* are files sent beside it, by name."""
    root = _read_xml(content)
    if root.tag != _tag("alert"):
        raise CapError("not_cap")
    alert = Alert(identifier=_required(root, "identifier"), sender=_required(root, "sender"),
                  sent=_required(root, "sent"), status=_required(root, "status"),
                  msg_type=_required(root, "msgType"))
    cap_time(alert.sent, "sent")
    _one_of(alert.status, "status", ALL_STATUSES)
    if alert.status not in STATUSES:
        raise CapError("status", value=alert.status)
    _one_of(alert.msg_type, "msgType", MSG_TYPES)
    alert.references = _text(root, "references").split()
    if alert.msg_type == "Cancel":
        return alert
    infos = root.findall(_tag("info"))
    if not infos:
        raise CapError("missing", field="info")
    data: dict = {"cap_identifier": alert.identifier, "cap_sender": alert.sender, "cap_sent": alert.sent,
                  "cap_status": alert.status, "cap_msg_type": alert.msg_type}
    expires: datetime | None = None
    for info in infos:
        for name, allowed in (("urgency", URGENCIES), ("severity", SEVERITIES), ("certainty", CERTAINTIES)):
            value = _one_of(_required(info, name), name, allowed)
            data.setdefault(name, value)
        _required(info, "category")
        event = _required(info, "event")
        data.setdefault("event", event)
        lang = _language(info)
        if lang and not data.get(f"title_{lang}"):
            data[f"title_{lang}"] = _text(info, "headline") or event
            data["headline"] = data.get("headline") or data[f"title_{lang}"]
            body = "\n\n".join(t for t in (_text(info, "description"), _text(info, "instruction")) if t)
            if body:
                data[f"body_{lang}"] = body
        text = _text(info, "expires")
        if text:
            moment = cap_time(text, "expires")
            expires = moment if expires is None else max(expires, moment)
        if alert.audio is None:
            alert.audio = _audio(info, uploads or {})
    if not (data.get("title_km") or data.get("title_en")):
        raise CapError("no_title")
    if expires is None:
        raise CapError("missing", field="expires")
    if expires <= (now or datetime.now(UTC)):
        raise CapError("expired", value=expires.isoformat())
    data["expires_at"] = utc_text(expires)
    if alert.audio is None:
        raise CapError("no_audio")
    alert.data = data
    return alert


def _audio(info, uploads: dict[str, bytes]) -> tuple[str, bytes, str] | None:
    for res in info.findall(_tag("resource")):
        mime = _text(res, "mimeType")
        if not mime.lower().startswith("audio/"):
            continue
        uri = _text(res, "uri")
        name = PurePosixPath(uri.split("?", 1)[0]).name if uri else ""
        deref = _text(res, "derefUri")
        if deref:
            try:
                content = base64.b64decode("".join(deref.split()), validate=True)
            except (binascii.Error, ValueError):
                raise CapError("bad_audio_data") from None
        elif name and name in uploads:
            content = uploads[name]
        else:
            raise CapError("audio_missing", value=name or _text(res, "resourceDesc") or "?")
        label = name or "cap-audio"
        size = _text(res, "size")
        if size and size != str(len(content)):
            raise CapError("size", value=label)
        digest = _text(res, "digest")
        if digest and hashlib.sha1(content).hexdigest() != digest.lower():  # noqa: S324 - CAP 1.2 names SHA-1
            raise CapError("digest", value=label)
        return label, content, mime
    return None
