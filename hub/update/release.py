"""A hub release as one file: the wheel, its manifest, and the manifest's Ed25519 signature.

The release file is an uncompressed tar holding ``manifest.json`` (the exact bytes
that were signed), ``manifest.sig`` (the 64-byte Ed25519 signature of those bytes,
in base64) and the wheel the manifest names. The manifest says:

- ``version``: the release's version (numbers and dots, e.g. ``0.2.0``);
- ``min_version``: the oldest running version it may replace;
- ``wheel``, ``bytes``, ``sha256``: the wheel's file name, size and SHA-256.

The central server holds the private key (``hub central release keygen``); every
hub holds its public half (``release_key_file``, put into the image). A release
whose signature, checksum or version does not hold is refused before anything is
written beside the running hub.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hub.core.errors import HubError
from hub.core.files import sha256_of

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = 1
VERSION_RE = re.compile(r"^\d+(\.\d+){0,3}$")
WHEEL_RE = re.compile(r"^commune_hub-(\d+(?:\.\d+){0,3})-py3-none-any\.whl$")


class ReleaseError(HubError):
    """A release that must not be installed: bad signature, checksum, version or file."""


def version_key(version: str) -> tuple[int, ...]:
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise ReleaseError(f"not a release version: {version!r} (numbers and dots, e.g. 0.2.0)")
    parts = [int(x) for x in version.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))


def canonical(manifest: dict) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- keys -------------------------------------------------------------------------------
def make_key_pair(private_path: Path, public_path: Path) -> None:
    """Write a new Ed25519 key pair as PEM files; the private one readable by its owner only."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if private_path.exists():
        raise ReleaseError(f"{private_path} exists; a release key is never overwritten")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    with open(private_path, "xb", opener=lambda p, f: os.open(p, f, 0o600)) as f:
        f.write(private)
    public_path.write_bytes(public)


def _private_key(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise ReleaseError(f"cannot read the release key {path}: {e}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseError(f"{path} is not an Ed25519 private key")
    return key


def _public_key(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except FileNotFoundError as e:
        raise ReleaseError(f"no release key on this hub ({path}); it cannot check a release") from e
    except (OSError, ValueError) as e:
        raise ReleaseError(f"cannot read the release key {path}: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise ReleaseError(f"{path} is not an Ed25519 public key")
    return key


# --- making a release -------------------------------------------------------------------
def make_manifest(wheel: Path, min_version: str) -> dict:
    m = WHEEL_RE.match(wheel.name)
    if not m:
        raise ReleaseError(f"{wheel.name} is not a commune-hub wheel (commune_hub-VERSION-py3-none-any.whl)")
    version = m.group(1)
    if version_key(min_version) > version_key(version):
        raise ReleaseError(f"min_version {min_version} is newer than the release {version}")
    return {"format": FORMAT, "name": "commune-hub", "version": version, "min_version": min_version,
            "wheel": wheel.name, "bytes": wheel.stat().st_size, "sha256": sha256_of(wheel),
            "made_at": datetime.now(UTC).isoformat(timespec="seconds")}


def sign(manifest: dict, key_path: Path) -> tuple[bytes, bytes]:
    """The manifest's bytes and their signature (base64)."""
    body = canonical(manifest)
    return body, base64.b64encode(_private_key(key_path).sign(body))


def write_release_file(out: Path, wheel: Path, body: bytes, signature: bytes) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((MANIFEST, body), (SIGNATURE, signature)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        tar.add(wheel, arcname=wheel.name, recursive=False)
    tmp.replace(out)
    return out


# --- checking a release -----------------------------------------------------------------
@dataclass
class Release:
    manifest: dict
    body: bytes
    signature: bytes

    @property
    def version(self) -> str:
        return self.manifest["version"]


def verify_manifest(body: bytes, signature: bytes, key_path: Path) -> Release:
    """The manifest, if *signature* is the release key's over *body*; else :class:`ReleaseError`."""
    from cryptography.exceptions import InvalidSignature

    key = _public_key(key_path)
    try:
        key.verify(base64.b64decode(signature, validate=True), body)
    except (InvalidSignature, ValueError) as e:
        raise ReleaseError("the release's signature is not the central server's: refused") from e
    try:
        manifest = json.loads(body)
    except ValueError as e:
        raise ReleaseError("the release's manifest is not JSON") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("name") != "commune-hub":
        raise ReleaseError("the release's manifest is not a commune-hub release of a known format")
    for field in ("version", "min_version"):
        version_key(manifest.get(field))
    if not WHEEL_RE.match(str(manifest.get("wheel", ""))) or WHEEL_RE.match(manifest["wheel"]).group(1) != \
            manifest["version"]:
        raise ReleaseError("the release's manifest names no wheel of its own version")
    if not re.fullmatch(r"[0-9a-f]{64}", str(manifest.get("sha256", ""))) or not isinstance(manifest.get("bytes"), int):
        raise ReleaseError("the release's manifest has no SHA-256 or size")
    return Release(manifest, body, signature)


def check_wheel(release: Release, wheel: Path) -> None:
    if wheel.stat().st_size != release.manifest["bytes"] or sha256_of(wheel) != release.manifest["sha256"]:
        raise ReleaseError(f"the wheel of release {release.version} does not match its manifest's SHA-256")


def open_release_file(path: Path, key_path: Path, into: Path) -> tuple[Release, Path]:
    """Check the release file's signature, then unpack its wheel into *into* and check it."""
    try:
        with tarfile.open(path, "r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            if MANIFEST not in members or SIGNATURE not in members:
                raise ReleaseError(f"{path} is not a hub release file (no signed manifest in it)")
            body = tar.extractfile(members[MANIFEST]).read()
            signature = tar.extractfile(members[SIGNATURE]).read().strip()
            release = verify_manifest(body, signature, key_path)
            name = release.manifest["wheel"]
            member = members.get(name)
            if member is None or not member.isfile():
                raise ReleaseError(f"{path} does not hold the wheel its manifest names ({name})")
            into.mkdir(parents=True, exist_ok=True)
            wheel = into / name
            with tar.extractfile(member) as src, open(wheel, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
    except (tarfile.TarError, OSError) as e:
        raise ReleaseError(f"cannot read the release file {path}: {e}") from e
    check_wheel(release, wheel)
    return release, wheel


def check_applies(release: Release, running: str, failed: set[str]) -> None:
    """Refuse a release that is not newer, does not replace *running*, or failed here before."""
    v = release.version
    if v in failed:
        raise ReleaseError(f"release {v} failed its health check on this hub before; it is not tried again")
    if version_key(v) <= version_key(running):
        raise ReleaseError(f"release {v} is not newer than the running {running}")
    if version_key(release.manifest["min_version"]) > version_key(running):
        raise ReleaseError(f"release {v} replaces {release.manifest['min_version']} or newer, not {running}")
