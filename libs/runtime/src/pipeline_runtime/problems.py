"""Legacy name of the kit's problem details: removed once tracker/notifier adopt pipeline_runtime.httpkit."""

from __future__ import annotations

from .httpkit.problems import (
    COMMON_SLUGS,
    PROBLEM_JSON,
    TYPE_BASE,
    field_error,
    install_problem_handlers,
    install_problem_openapi,
    internal_error,
    problem,
    problem_responses,
)

__all__ = [
    "COMMON_SLUGS",
    "PROBLEM_JSON",
    "TYPE_BASE",
    "field_error",
    "install_problem_handlers",
    "install_problem_openapi",
    "internal_error",
    "problem",
    "problem_responses",
]
