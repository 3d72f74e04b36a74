"""Exit codes, and the errors every command turns into exit code 1."""

from __future__ import annotations

from typing import Any

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_COMPLETED_WITH_ERRORS = 2

FINISHED_STATUSES = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})
_EXIT_CODE_OF_STATUS = {
    "completed": EXIT_COMPLETED,
    "completed_with_errors": EXIT_COMPLETED_WITH_ERRORS,
    "failed": EXIT_FAILED,
}


def exit_code_for(status: str) -> int:
    """0 completed, 2 completed with errors, 1 failed; a request still running is not an error (0)."""
    return _EXIT_CODE_OF_STATUS.get(status, EXIT_COMPLETED)


def is_finished(status: dict[str, Any]) -> bool:
    return status.get("status") in FINISHED_STATUSES or status.get("completed_at") is not None


class CliError(Exception):
    """Something the user should read; every command exits with 1 after showing it."""

    def __init__(self, title: str, detail: str = "", errors: list[dict[str, Any]] | None = None):
        super().__init__(f"{title}: {detail}" if detail else title)
        self.title = title
        self.detail = detail
        self.errors = errors or []

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "detail": self.detail, "errors": self.errors}


class ApiError(CliError):
    """The pipeline answered with an error (RFC 9457 problem details when it could)."""

    def __init__(self, status: int, problem: dict[str, Any]):
        title = str(problem.get("title") or f"HTTP {status}")
        super().__init__(title, str(problem.get("detail") or ""), list(problem.get("errors") or []))
        self.status = status
        self.problem = problem

    def as_dict(self) -> dict[str, Any]:
        return {**self.problem, **super().as_dict(), "status": self.status}


class ServiceUnreachable(CliError):
    def __init__(self, url: str, reason: str):
        super().__init__("Service unreachable", f"{url}: {reason}")
