"""`hub central release keygen` and `hub central release publish`: the officer's side of a hub release."""

from __future__ import annotations

from pathlib import Path

from hub import __version__
from hub.central.store import CentralStore
from hub.core.daemon import load_settings
from hub.update import release as rel


def register(csub) -> None:
    a = csub.add_parser("release", help="make the release key pair, or sign a hub wheel as a release")
    rsub = a.add_subparsers(dest="central_release_command", metavar="ACTION", required=True)
    k = rsub.add_parser("keygen", help="make an Ed25519 key pair: KEY (private, mode 0600) and KEY.pub",
                        description="The private key signs releases and stays on the central server; KEY.pub goes"
                                    " into every hub's image (release_key_file, /etc/hub/release-key.pub).")
    k.add_argument("key", metavar="KEY", help="where to write the private key; the public one goes to KEY.pub")
    k.set_defaults(func=cmd_keygen)
    p = rsub.add_parser("publish", help="sign WHEEL as a hub release and write the release file",
                        description="Writes a manifest (version from the wheel's name, its SHA-256 and size, and"
                                    " the oldest version it replaces), signs it with KEY, and writes one release"
                                    " file: the file a technician gives `hub update FILE` from a USB stick. It"
                                    " also stores the release in this central server's database (database_url),"
                                    " where hubs fetch it during sync: the newest published version is offered.")
    p.add_argument("wheel", metavar="WHEEL", help="commune_hub-VERSION-py3-none-any.whl")
    p.add_argument("--key", required=True, metavar="KEY", help="the private release key (from keygen)")
    p.add_argument("--min-version", default=__version__, metavar="VERSION",
                   help=f"the oldest running version this release may replace (default: {__version__})")
    p.add_argument("--out", metavar="FILE",
                   help="the release file to write (default: hub-VERSION.release beside the wheel)")
    p.add_argument("--file-only", action="store_true",
                   help="only write the release file; do not offer it to the hubs through this central server")
    p.set_defaults(func=cmd_publish)


def cmd_keygen(args) -> int:
    key = Path(args.key)
    public = key.with_name(key.name + ".pub")
    rel.make_key_pair(key, public)
    print(f"private key: {key} (keep it on the central server, mode 0600)")
    print(f"public key:  {public} (put it into the hub image as /etc/hub/release-key.pub)")
    return 0


def cmd_publish(args) -> int:
    wheel = Path(args.wheel)
    if not wheel.is_file():
        raise rel.ReleaseError(f"no such wheel: {wheel}")
    manifest = rel.make_manifest(wheel, args.min_version)
    body, signature = rel.sign(manifest, Path(args.key))
    out = Path(args.out) if args.out else wheel.with_name(f"hub-{manifest['version']}.release")
    rel.write_release_file(out, wheel, body, signature)
    if not args.file_only:
        store = CentralStore.from_settings(load_settings(args))
        try:
            store.add_release(body, signature, wheel.read_bytes())
        finally:
            store.close()
        print(f"release {manifest['version']} is offered to the hubs at their next sync")
    print(f"release {manifest['version']} (replaces {manifest['min_version']} or newer),"
          f" sha256 {manifest['sha256']}: {out}")
    return 0
