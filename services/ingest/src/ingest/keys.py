"""`python -m ingest keys ...`: create, list and revoke API keys in the database of DATABASE_URL.

    python -m ingest keys create --tenant acme --scopes upload,read [--name catalogue-sync]
    python -m ingest keys list [--tenant acme]
    python -m ingest keys revoke KEY_ID

`create` prints the key once: only its hash is stored, so it cannot be shown again.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from uuid import UUID

from pipeline_runtime.auth import SCOPES, ApiKeyInfo, AsyncpgKeyStore, parse_scopes
from pipeline_runtime.database import create_db_pool

from .access import TENANT_ID_PATTERN
from .config import Settings


def tenant(value: str) -> str:
    if not re.fullmatch(TENANT_ID_PATTERN, value):
        raise argparse.ArgumentTypeError(
            "letters, digits, '.', '_' or '-', at most 64, not starting with a sign"
        )
    return value


def scopes(value: str) -> list[str]:
    try:
        return parse_scopes(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m ingest keys", description="Manage API keys.")
    commands = root.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--tenant", required=True, type=tenant)
    create.add_argument("--scopes", required=True, type=scopes, help=f"comma-separated: {', '.join(SCOPES)}")
    create.add_argument("--name", help="a label to recognise the key by")
    listing = commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--tenant", type=tenant)
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=UUID)
    return root


async def create(store: AsyncpgKeyStore, args: argparse.Namespace) -> int:
    info, key = await store.create(args.tenant, args.scopes, args.name)
    print(f"key_id  {info.key_id}\ntenant  {info.tenant_id}\nscopes  {','.join(info.scopes)}")
    print(f"\n{key}\n")
    print("Keep it now: only its hash is stored, it cannot be shown again.", file=sys.stderr)
    return 0


def row(info: ApiKeyInfo) -> str:
    when = (info.last_used_at and info.last_used_at.isoformat(timespec="seconds")) or "never"
    state = f"revoked {info.revoked_at.isoformat(timespec='seconds')}" if info.revoked_at else "active"
    cells = [str(info.key_id), info.tenant_id, info.prefix + "...", ",".join(info.scopes)]
    return "\t".join([*cells, info.name or "-", f"last used {when}", state])


async def list_keys(store: AsyncpgKeyStore, args: argparse.Namespace) -> int:
    for info in await store.list(args.tenant):
        print(row(info))
    return 0


async def revoke(store: AsyncpgKeyStore, args: argparse.Namespace) -> int:
    if await store.revoke(args.key_id):
        print(f"revoked {args.key_id}")
        return 0
    print(f"no active key {args.key_id}", file=sys.stderr)
    return 1


COMMANDS: dict[str, Callable[[AsyncpgKeyStore, argparse.Namespace], Awaitable[int]]] = {
    "create": create,
    "list": list_keys,
    "revoke": revoke,
}


async def run(args: argparse.Namespace, database_url: str) -> int:
    pool = await create_db_pool(database_url, min_size=1, max_size=1)
    try:
        return await COMMANDS[args.command](AsyncpgKeyStore(pool), args)
    finally:
        await pool.close()


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return asyncio.run(run(args, Settings().database_url))
