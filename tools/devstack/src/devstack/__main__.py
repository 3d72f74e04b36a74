"""python -m devstack [--profile dev|test|cluster] COMMAND: the local stack without Docker."""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import demo, kafka, netns, ports, postgres, procs, s3store, services
from .migrate import apply_migrations
from .profiles import PROFILES, Profile


def stack_parts(profile: Profile) -> dict[str, dict[str, int]]:
    """Every process the profile starts (named as in its pid file) -> the ports it listens on."""
    return {
        **postgres.ports_of(profile),
        **kafka.ports_of(profile),
        **s3store.ports_of(profile),
        **services.ports_of(profile),
        **demo.ports_of(profile),
    }


def is_running(profile: Profile, part: str) -> bool:
    if part == "postgres":
        return postgres.is_running(profile)
    return procs.read_pid(profile.run_dir, part) is not None


def check_ports(profile: Profile) -> None:
    """Before starting anything: every port of a part not running yet is free, or one line says
    which are taken and by which process (ours, already running, are not asked about)."""
    ports.check_parts(stack_parts(profile), lambda part: is_running(profile, part))


def infra_up(profile: Profile) -> None:
    check_ports(profile)
    netns.up(profile)
    postgres.start(profile)
    applied = asyncio.run(apply_migrations(profile.database_url))
    print(f"postgres ready at {profile.database_url} (migrations applied now: {applied or 'none'})")
    s3store.start(profile)
    if profile.object_store_port:
        print(f"object store ready at {profile.object_store_url}")
    kafka.start(profile)
    rf, isr = kafka.replication(profile)
    print(f"kafka ready at {profile.bootstrap_servers} (replication factor {rf}, min.insync.replicas {isr})")


def infra_down(profile: Profile) -> None:
    kafka.stop(profile)
    s3store.stop(profile)
    postgres.stop(profile)
    netns.down(profile)


def down(profile: Profile) -> None:
    services.stop_all(profile)
    for name in procs.running(profile.run_dir):  # anything else this stack started
        if not services.is_infrastructure(name):
            procs.stop(profile.run_dir, name)
    infra_down(profile)
    print(f"stopped the {profile.name} stack")


def print_env(profile: Profile) -> None:
    for key, value in profile.service_env().items():
        print(f"export {key}={value}")


def up(profile: Profile) -> None:
    infra_up(profile)
    services.start_all(profile)
    demo.run(profile)


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="dev")
    parser.add_argument(
        "command",
        choices=[
            "up",
            "down",
            "infra-up",
            "infra-down",
            "services-up",
            "services-down",
            "status",
            "env",
            "demo",
            "migrate",
            "members",
        ],
    )
    args = parser.parse_args()
    profile = PROFILES[args.profile]
    actions = {
        "infra-up": lambda: infra_up(profile),
        "infra-down": lambda: infra_down(profile),
        "services-up": lambda: services.start_all(profile),
        "services-down": lambda: services.stop_all(profile),
        "up": lambda: up(profile),
        "down": lambda: down(profile),
        "status": lambda: print(procs.running(profile.run_dir) or "nothing running"),
        "env": lambda: print_env(profile),
        "demo": lambda: demo.run(profile),
        "migrate": lambda: print(asyncio.run(apply_migrations(profile.database_url))),
        "members": lambda: print(services.COMPRESSOR_MEMBERS),  # what `make up` starts here
    }
    try:
        actions[args.command]()
    except (RuntimeError, TimeoutError) as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
