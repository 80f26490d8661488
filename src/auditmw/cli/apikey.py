"""``auditmw apikey hash``: turn an API key into its registry entry (the stored form).

The key is read from stdin (never from the command line, where it would land in shell
history and ``ps``), or generated with ``--generate`` and printed once on stderr.  The
server secret comes from an environment variable.  Only the keyed hash is printed on
stdout, ready to paste into the registry file.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from typing import TYPE_CHECKING, Any

from auditmw.cli._output import error
from auditmw.identity.apikey import MIN_SECRET_BYTES, hash_key

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]

DEFAULT_SECRET_ENV = "AUDITMW_APIKEY_SECRET"  # noqa: S105 - a variable name, not a secret
MAX_KEY_BYTES = 4096
KEY_PREFIX = "amk_"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``apikey`` command and its ``hash`` sub-command."""
    parser = subparsers.add_parser("apikey", help="manage API key registry entries")
    actions = parser.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    hasher = actions.add_parser(
        "hash",
        help="print the registry entry (keyed hash) of a key read from stdin",
        description="Read an API key from stdin (or --generate one) and print its registry "
        "entry. The key itself is never stored.",
    )
    hasher.add_argument("--secret-env", default=DEFAULT_SECRET_ENV, metavar="VAR",
                        help=f"environment variable holding the server secret "
                        f"(default {DEFAULT_SECRET_ENV})")  # fmt: skip
    hasher.add_argument("--key-id", help="public id of the key (default: random)")
    hasher.add_argument("--generate", action="store_true",
                        help="generate a new random key and print it once on stderr")  # fmt: skip
    hasher.add_argument("--principal-id", help="actor id (default: the key id)")
    hasher.add_argument("--name", help="actor display name")
    hasher.add_argument("--role", action="append", default=[], help="actor role (repeatable)")
    hasher.add_argument("--tenant", help="actor tenant id")
    hasher.add_argument("--type", choices=("api_key", "service", "user"), default="api_key",
                        help="actor type (default api_key)")  # fmt: skip
    hasher.add_argument("--format", choices=("json", "toml"), default="json",
                        help="output format of the entry (default json)")  # fmt: skip
    hasher.set_defaults(func=run_hash)


def run_hash(args: argparse.Namespace) -> int:
    """Print the registry entry for one key; return the exit code."""
    secret = os.environ.get(args.secret_env, "").encode()
    if len(secret) < MIN_SECRET_BYTES:
        return error("apikey hash", f"set {args.secret_env} to the server secret "
                     f"(at least {MIN_SECRET_BYTES} bytes)")  # fmt: skip
    if args.generate:
        key = (KEY_PREFIX + secrets.token_urlsafe(32)).encode()
        print(f"New API key (shown once, store it now): {key.decode()}", file=sys.stderr)
    else:
        key = sys.stdin.buffer.read(MAX_KEY_BYTES + 2).strip()
        if not key or len(key) > MAX_KEY_BYTES:
            return error("apikey hash", f"expected one key of 1 to {MAX_KEY_BYTES} bytes on stdin")
    entry = build_entry(args, hash_key(secret, key))
    print(json.dumps(entry) if args.format == "json" else to_toml(entry))
    return 0


def build_entry(args: argparse.Namespace, digest: str) -> dict[str, Any]:
    """Return the registry entry for the parsed arguments and the key's hash."""
    key_id = args.key_id or f"key-{secrets.token_hex(4)}"
    principal: dict[str, Any] = {"id": args.principal_id or key_id, "type": args.type}
    if args.name:
        principal["name"] = args.name
    if args.role:
        principal["roles"] = list(args.role)
    if args.tenant:
        principal["tenant_id"] = args.tenant
    return {"key_id": key_id, "hash": digest, "principal": principal}


def to_toml(entry: dict[str, Any]) -> str:
    """Render one entry as a ``[[keys]]`` TOML table (values JSON-quoted, valid TOML)."""
    lines = [
        "[[keys]]",
        f"key_id = {json.dumps(entry['key_id'])}",
        f"hash = {json.dumps(entry['hash'])}",
    ]
    principal = ", ".join(
        f"{name} = {json.dumps(value)}" for name, value in entry["principal"].items()
    )
    lines.append(f"principal = {{ {principal} }}")
    return "\n".join(lines)
