"""What a request's images add up to: counts, bytes in and out, and failures by reason."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FailureReason:
    code: str
    count: int = 0
    example: str = ""


@dataclass
class Summary:
    images: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    reasons: dict[str, FailureReason] = field(default_factory=dict)

    def add(self, image: dict[str, Any]) -> None:
        self.images += 1
        status = image.get("status")
        if status == "done":
            self.add_done(image)
        elif status == "failed":
            self.add_failure(image.get("error") or {})
        else:
            self.pending += 1

    def add_done(self, image: dict[str, Any]) -> None:
        self.done += 1
        if image.get("input_bytes") is not None and image.get("output_bytes") is not None:
            self.input_bytes += image["input_bytes"]
            self.output_bytes += image["output_bytes"]

    def add_failure(self, error: dict[str, Any]) -> None:
        self.failed += 1
        code = str(error.get("code") or "unknown")
        reason = self.reasons.setdefault(code, FailureReason(code, example=str(error.get("message") or "")))
        reason.count += 1

    @property
    def ratio(self) -> float | None:
        """Output bytes per input byte over the compressed images (0.25 means a quarter of the size)."""
        return self.output_bytes / self.input_bytes if self.input_bytes else None

    def failures_by_reason(self) -> list[FailureReason]:
        return sorted(self.reasons.values(), key=lambda reason: (-reason.count, reason.code))

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "images": self.images,
            "done": self.done,
            "failed": self.failed,
            "pending": self.pending,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
            "ratio": round(ratio, 4) if ratio is not None else None,
            "failures_by_reason": {reason.code: reason.count for reason in self.failures_by_reason()},
        }


async def summarise(images: AsyncIterable[dict[str, Any]]) -> Summary:
    summary = Summary()
    async for image in images:
        summary.add(image)
    return summary
