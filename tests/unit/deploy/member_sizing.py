"""What a compressor member's container needs, read from its environment, in each file's units."""

from __future__ import annotations

import re

from devstack.services import MEMBER_ALLOCATOR, PILLOW_MEMORY

# Pillow reads PILLOW_BLOCK_SIZE with an optional k or m (binary, case-insensitive)
PILLOW_UNITS = {"": 1, "k": 2**10, "m": 2**20}
# Kubernetes quantities: binary Ki/Mi/Gi, decimal k/M/G
K8S_UNITS = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
# Docker/Compose byte values: b/k/m/g, binary, case-insensitive
COMPOSE_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def _parse(text: str, units: dict[str, int], *, fold: bool) -> int:
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", str(text).strip())
    assert match, text
    number, unit = match.groups()
    return int(number) * units[unit.lower() if fold else unit]


def k8s_bytes(quantity: str) -> int:
    return _parse(quantity, K8S_UNITS, fold=False)


def compose_bytes(value: str) -> int:
    return _parse(value, COMPOSE_UNITS, fold=True)


def pillow_cache_bytes(env: dict[str, str]) -> int:
    """The most Pillow's kept blocks take: PILLOW_BLOCKS_MAX x PILLOW_BLOCK_SIZE."""
    return int(env["PILLOW_BLOCKS_MAX"]) * _parse(env["PILLOW_BLOCK_SIZE"], PILLOW_UNITS, fold=True)


def glibc_kept_bytes(env: dict[str, str]) -> int:
    """Free heap glibc keeps before trimming, per arena: MALLOC_ARENA_MAX x MALLOC_TRIM_THRESHOLD_."""
    return int(env["MALLOC_ARENA_MAX"]) * int(env["MALLOC_TRIM_THRESHOLD_"])


def least_memory(env: dict[str, str]) -> int:
    """Pillow's kept blocks, glibc's kept free heap and the bytes of images in flight."""
    return pillow_cache_bytes(env) + glibc_kept_bytes(env) + int(env["COMPRESSOR_MAX_INFLIGHT_BYTES"])


def member_env_as_devstack(env: dict[str, str]) -> bool:
    """The Pillow and allocator settings are the ones devstack gives its members."""
    wanted = {**PILLOW_MEMORY, **MEMBER_ALLOCATOR}
    return {key: str(env.get(key)) for key in wanted} == wanted
