"""`python -m ingest weights ...`: tenants' shares of the compressors, in the database of DATABASE_URL.

    python -m ingest weights get acme
    python -m ingest weights set acme 3

A tenant without a weight has 1. While several tenants have images waiting, each gets images
finished in proportion to its weight (3 and 1: 75 % and 25 %).
"""

from __future__ import annotations

import argparse
import asyncio

from pipeline_runtime.database import create_db_pool

from .config import Settings
from .control_store import AsyncpgControlStore
from .keys import tenant

MAX_WEIGHT = 1000


def weight(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_WEIGHT:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_WEIGHT}")
    return int(value)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m ingest weights", description="Tenant scheduling weights.")
    commands = root.add_subparsers(dest="command", required=True)
    get = commands.add_parser("get", help="print a tenant's weight")
    get.add_argument("tenant", type=tenant)
    put = commands.add_parser("set", help="set a tenant's weight")
    put.add_argument("tenant", type=tenant)
    put.add_argument("weight", type=weight)
    return root


async def run(args: argparse.Namespace, database_url: str, status_base_url: str) -> int:
    pool = await create_db_pool(database_url, min_size=1, max_size=1)
    try:
        store = AsyncpgControlStore(pool, status_base_url)
        if args.command == "set":
            await store.set_weight(args.tenant, args.weight)
        print(f"{args.tenant}\t{await store.weight(args.tenant)}")
        return 0
    finally:
        await pool.close()


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    return asyncio.run(run(args, settings.database_url, settings.status_base_url))
