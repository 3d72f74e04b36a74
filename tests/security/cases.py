"""The registry of hostile cases: each attack of issue 12 is one function, added in one place.

Write `async def case_...(stage) -> Outcome` in upload_cases.py (what ingest refuses at the door)
or pipeline_cases.py (what needs the whole pipeline), and decorate it with
`@case("what the attacker does", "what must happen")`. It returns what it observed and whether
that is what must happen; test_hostile_use.py runs every registered case in order, prints each as
a row and fails on any row not ok.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.security.stage import Stage


@dataclass(frozen=True)
class Outcome:
    observed: str
    ok: bool


@dataclass(frozen=True)
class Case:
    name: str
    expected: str
    run: Callable[[Stage], Awaitable[Outcome]]


CASES: list[Case] = []


def case(name: str, expected: str) -> Callable[[Callable[[Stage], Awaitable[Outcome]]], Callable]:
    def register(run: Callable[[Stage], Awaitable[Outcome]]) -> Callable[[Stage], Awaitable[Outcome]]:
        CASES.append(Case(name, expected, run))
        return run

    return register
