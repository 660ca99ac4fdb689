"""Error pages in the visitor's language, phone-sized: the app's own, and static ones for nginx.

nginx answers some requests itself (a body over its limit, the app down or too
slow, a name it refuses). Its pages are rendered here from the same template,
Khmer first with English beside, into the data directory when the app starts,
and nginx's ``error_page`` lines point at them (hub.net.nginx).
"""

from __future__ import annotations

import io
from pathlib import Path

from flask import g, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.formparser import FormDataParser
from werkzeug.wsgi import get_input_stream

from hub import feedback
from hub.core.files import make_dir, write_durably
from hub.core.khmer import digits
from hub.core.words import N_
from hub.web.current import hub_settings, lang, proxy_body_mb
from hub.web.i18n import _, in_language

#: status -> (title, what to do), as catalogue text.
PAGES = {
    403: (N_("This page is not open"), N_("Please go back to the commune hub's home page.")),
    404: (N_("This page does not exist"), N_("The address may be wrong, or the notice was taken down.")),
    413: (N_("That recording is too big"), N_("A recording may be up to %(minutes)s minutes long."
                                               " Please record a shorter message and send it again.")),
    500: (N_("Something went wrong on the hub"), N_("Please try again in a moment. If it happens again,"
                                                    " tell the commune office.")),
    502: (N_("The hub is starting"), N_("Please wait a minute and reload the page.")),
    504: (N_("The hub is busy"), N_("Please wait a minute and reload the page.")),
    429: (N_("Too many tries from this phone"), N_("Please wait a few minutes, then try again.")),
}
#: nginx's own 413 comes before the app reads anything, so it cannot give the form back. The
#: browser still has it: Back shows the form with what was typed (tests/net/test_upload_browser.py).
BACK_KEEPS_TEXT = N_("Press your phone's Back button: what you wrote is still there. Then choose a shorter"
                     " recording, or none, and send again.")
#: The pages nginx serves itself, and where it finds them (hub.net.nginx).
NGINX_PAGES = (403, 404, 413, 429, 502, 504)


def error_dir(settings) -> Path:
    return Path(settings.data_dir) / "errors"


def _minutes() -> int:
    return max(1, hub_settings().max_audio_seconds // 60)


def page(status: int, static: bool = False) -> str:
    """The page for *status* in the visitor's language; a static one has Khmer, then English."""
    title, text = PAGES[status]
    langs = ("km", "en") if static else (lang(),)
    lines = []
    for code in langs:
        said = in_language(text, code) % {"minutes": digits(_minutes(), code)}
        if static and status == 413:
            said += " " + in_language(BACK_KEEPS_TEXT, code)
        lines.append((code, in_language(title, code), said))
    return render_template("error.html", status=status, lines=lines, static=static)


#: The form's text fields that come back when a body is refused (the file never does).
TYPED_FIELDS = ("category", "body", "name", "phone", "village", "consent_share")
#: The most text read back from a refused form (the message box holds 4,000 characters).
TYPED_BYTES = 64 * 1024


class _Dropped(io.RawIOBase):
    """Where a refused body's file goes: nowhere."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0


def typed_fields() -> dict:
    """The text a villager typed in a form whose body is over the app's limit.

    The body is read through once with its files dropped, up to nginx's own limit (a body
    past that never gets here behind nginx); nothing of it is stored.
    """
    if request.mimetype != "multipart/form-data":
        return {}
    cap = proxy_body_mb(hub_settings()) * 1024 * 1024
    if (request.content_length or 0) > cap:
        return {}
    parser = FormDataParser(stream_factory=lambda *a, **k: _Dropped(), max_form_memory_size=TYPED_BYTES,
                            max_form_parts=100)
    try:
        stream = get_input_stream(request.environ, max_content_length=cap)
        _stream, form, _files = parser.parse(stream, request.mimetype, request.content_length,
                                             request.mimetype_params)
    except (HTTPException, ValueError, OSError):
        return {}
    return {k: form[k] for k in TYPED_FIELDS if k in form}


def _feedback_too_big():
    """An upload over the limit: the form again with what was typed, saying how long a recording may be."""
    message = _("That recording is too big. A recording may be up to %(minutes)s minutes long."
                " Please record a shorter message and send it again.", minutes=_minutes())
    return render_template("feedback.html", categories=feedback.CATEGORIES, form=typed_fields(),
                           error=message), 413


def init_app(app) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        if e.code == 413 and request.path == "/feedback":
            return _feedback_too_big()
        if e.code not in PAGES or request.path.startswith(("/clerk", "/api/")):
            return e
        return page(e.code), e.code

    @app.errorhandler(500)
    def _server_error(e):
        return page(500), 500


def render_static_pages(app) -> list[Path]:
    """Write nginx's error pages (Khmer, English beside) into the data directory; only those that changed."""
    settings = app.config["HUB_SETTINGS"]
    out_dir = error_dir(settings)
    written = []
    with app.test_request_context("/"):
        g.lang = "km"
        for status in NGINX_PAGES:
            html = page(status, static=True).encode()
            path = out_dir / f"{status}.html"
            if path.is_file() and path.read_bytes() == html:
                continue
            make_dir(out_dir)
            write_durably(path, html)
            written.append(path)
    return written
