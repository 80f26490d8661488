"""``auditmw keygen``: create a checkpoint signing key pair or a MAC key.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from auditmw.cli._output import error
from auditmw.integrity.keys import generate_keypair

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``keygen`` sub-command."""
    parser = subparsers.add_parser(
        "keygen",
        help="create an Ed25519 signing key pair (or a MAC key) for integrity",
        description="Create NAME.key (private, mode 0600) and NAME.pub in --out, and print "
        "the key id and a registry entry. With --mac, create NAME.mac (64 hex digits, 0600).",
    )
    parser.add_argument("--out", default=".", help="directory for the key files (default: .)")
    parser.add_argument("--name", default="auditmw", help="file name stem (default: auditmw)")
    parser.add_argument("--mac", action="store_true", help="create a MAC key instead")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument(
        "--registry", metavar="FILE", help="also add the public key to this JSON key registry"
    )
    parser.set_defaults(func=run)


def _write_private(path: Path, data: bytes, force: bool, mode: int = 0o600) -> None:
    """Write a key file with exactly ``mode`` (0600) whatever the umask, never through a symlink.

    With ``force`` the key goes to a fresh temporary file renamed over ``path``: an
    existing file's looser mode, its other hard links or a planted symlink never see
    the new key.  Without it, ``O_EXCL`` refuses any existing name, a symlink included.
    """
    target = path.with_name(f".{path.name}.new") if force else path
    if force:
        target.unlink(missing_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, mode)  # the umask may only remove bits; this sets exactly these
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(fd)
    finally:
        os.close(fd)
    if force:
        os.replace(target, path)


def _add_to_registry(path: Path, key_id: str, public: str) -> None:
    document = json.loads(path.read_text()) if path.exists() else {"keys": []}
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document["keys"].append({"key_id": key_id, "public_key": public, "created": stamp})
    path.write_text(json.dumps(document, indent=2) + "\n")


def run(args: argparse.Namespace) -> int:
    """Create the key files; return 0, or 2 when a file exists or cannot be written."""
    out = Path(args.out)
    try:
        if not out.is_dir():
            out.mkdir(mode=0o700, parents=True)
            os.chmod(out, 0o700)  # mkdir's mode is masked by the umask; keys stay private
        if args.mac:
            path = out / f"{args.name}.mac"
            _write_private(path, secrets.token_hex(32).encode() + b"\n", args.force)
            print(f"MAC key written to {path} (mode 0600); use IntegrityOptions(mac_key_file=...)")
            return 0
        private, public, key_id = generate_keypair()
        key_path, pub_path = out / f"{args.name}.key", out / f"{args.name}.pub"
        taken = [p for p in (key_path, pub_path) if p.exists() or p.is_symlink()]
        if taken and not args.force:  # refuse before writing either half of the pair
            raise FileExistsError(17, "exists", str(taken[0]))
        _write_private(key_path, private, args.force)
        _write_private(pub_path, public, args.force, mode=0o644)
        if args.registry:
            _add_to_registry(Path(args.registry), key_id, public.decode())
    except FileExistsError as exc:
        return error("keygen", f"{exc.filename} exists; use --force to overwrite")
    except (OSError, ValueError, KeyError) as exc:
        if not isinstance(exc, OSError):
            return error("keygen", f"{args.registry} is not a key registry")
        return error("keygen", f"cannot write {exc.filename}: {exc.strerror}")
    print(f"key id: {key_id}")
    print(f"private key: {key_path} (mode 0600)  public key: {pub_path}")
    entry = {"key_id": key_id, "public_key": public.decode(), "not_before": None}
    print("registry entry:", json.dumps({k: v for k, v in entry.items() if v is not None}))
    return 0
