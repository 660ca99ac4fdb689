"""The sync protocol's shared pieces: canonical records, content hashes, the uplink proof.

Both the hub (``hub.sync``) and the central server (``hub.central``) import
this module, so the two sides can never disagree on what "the same content"
means. A wire record is::

    {"id": UUID, "kind": "feedback", "hub_id": UUID, "created_at": ISO, "data": {...}}

Its content hash is the SHA-256 of its canonical JSON (sorted keys, no
spaces, UTF-8). The central server computes it itself on arrival.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json

API = "/api/v1"
#: Fields of a wire record; anything else is refused.
RECORD_FIELDS = ("id", "kind", "hub_id", "created_at", "data")
#: Largest JSON body either side accepts, after gunzip.
MAX_BODY = 16 * 1024 * 1024


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(record: dict) -> str:
    """What "the same content" means: every field of the record, canonically encoded."""
    return hashlib.sha256(canonical({k: record.get(k) for k in RECORD_FIELDS})).hexdigest()


def token_hash(token: str) -> str:
    """The central server stores only this, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def sign(token: str, nonce: str, body: bytes) -> str:
    """The central server's signature on an answer to the request that carried *nonce*.

    Only a holder of the hub's token can make it, so a captive portal that
    answers 200 to everything is never taken for the central server, and no
    answer is replayed into another request.
    """
    msg = b"hub-sync\n" + nonce.encode() + b"\n" + hashlib.sha256(body).hexdigest().encode()
    return hmac.new(token.encode(), msg, hashlib.sha256).hexdigest()


def signature_ok(token: str, nonce: str, body: bytes, signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(sign(token, nonce, body), signature)


def gzip_json(value) -> bytes:
    return gzip.compress(canonical(value), compresslevel=6, mtime=0)


def read_json_body(raw: bytes, encoding: str | None):
    """Decode a request or response body that may be gzipped; bounded in size."""
    if (encoding or "").lower() == "gzip":
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            raw = f.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise ValueError("body too large")
    return json.loads(raw.decode("utf-8"))
