"""An in-memory stand-in for the ingest service and the tracker API, served through httpx.MockTransport.

It follows the HTTP contract the CLI relies on: POST /upload, GET /status/{id},
GET /requests/{id}/images (cursor-paginated), GET /requests/{id}/output.csv (409 until finished)
and the media files. Every request it receives is recorded so tests can look at headers and bodies.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

INGEST_URL = "http://127.0.0.1:18000"
API_URL = "http://127.0.0.1:18001"
FOREIGN_MEDIA_URL = "http://127.0.0.2:18002"
PROBLEM_JSON = "application/problem+json"
FINISHED = ("completed", "completed_with_errors", "failed")


@dataclass
class FakeRequest:
    """One request's server-side state: the statuses polls will see in turn, and its images."""

    request_id: str
    statuses: list[str]
    images: list[dict[str, Any]]
    polls: int = 0

    def next_status(self) -> dict[str, Any]:
        name = self.statuses[min(self.polls, len(self.statuses) - 1)]
        self.polls += 1
        return self.status_body(name)

    def status_body(self, name: str) -> dict[str, Any]:
        total = len(self.images)
        done = sum(image["status"] == "done" for image in self.images)
        failed = sum(image["status"] == "failed" for image in self.images)
        if name in ("pending", "processing"):
            done, failed = (0, 0) if name == "pending" else (done // 2, failed // 2)
        finished = name in FINISHED
        return {
            "request_id": self.request_id,
            "status": name,
            "total_images": total,
            "processed_images": done,
            "failed_images": failed,
            "progress": round((done + failed) / total, 4) if total else 1.0,
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:00:01Z",
            "completed_at": "2025-01-01T00:00:02Z" if finished else None,
        }

    @property
    def eventually_finished(self) -> bool:
        return self.statuses[-1] in FINISHED


@dataclass
class FakePipeline:
    requests: dict[str, FakeRequest] = field(default_factory=dict)
    media: dict[str, bytes] = field(default_factory=dict)
    received: list[httpx.Request] = field(default_factory=list)
    upload_answers: list[httpx.Response] = field(default_factory=list)
    statuses_for_next_upload: list[str] = field(default_factory=lambda: ["completed"])
    images_for_next_upload: list[dict[str, Any]] = field(default_factory=list)
    failing_status_polls: int = 0
    in_flight: int = 0
    most_in_flight: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_concurrently)

    async def handle_concurrently(self, request: httpx.Request) -> httpx.Response:
        """Yields to the event loop mid-request, so concurrent requests overlap and can be counted."""
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            return self.handle(request)
        finally:
            self.in_flight -= 1

    def add_request(self, statuses: list[str], images: list[dict[str, Any]]) -> FakeRequest:
        request = FakeRequest(str(uuid.uuid4()), statuses, images)
        self.requests[request.request_id] = request
        return request

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        url = str(request.url)
        if url.startswith(INGEST_URL + "/upload") and request.method == "POST":
            return self.upload(request)
        if url.startswith(INGEST_URL + "/requests/") and request.method == "DELETE":
            return self.cancel(request.url.path.rsplit("/", 1)[1])
        if url.startswith(API_URL + "/status/"):
            return self.status(request.url.path.rsplit("/", 1)[1])
        if url.startswith(API_URL + "/requests/"):
            return self.request_resource(request)
        if url in self.media:
            return httpx.Response(200, content=self.media[url], headers={"content-type": "image/jpeg"})
        return problem(404, "Not Found", f"nothing at {request.url.path}")

    def upload(self, request: httpx.Request) -> httpx.Response:
        if self.upload_answers:
            return self.upload_answers.pop(0)
        created = self.add_request(self.statuses_for_next_upload, self.images_for_next_upload)
        body = {
            "request_id": created.request_id,
            "status": "pending",
            "total_products": len({image["serial_number"] for image in created.images}),
            "total_images": len(created.images),
            "status_url": f"{API_URL}/status/{created.request_id}",
            "output_csv_url": f"{API_URL}/requests/{created.request_id}/output.csv",
        }
        return httpx.Response(202, json=body)

    def cancel(self, request_id: str) -> httpx.Response:
        found = self.requests.get(request_id)
        if found is None:
            return problem(404, "Not found", f"no request {request_id} of your tenant")
        if found.eventually_finished and found.polls:
            return problem(409, "Request finished", "the request has already finished")
        found.statuses = ["cancelled"]
        body = {"request_id": request_id, "status": "cancelled", "cancelled_images": len(found.images)}
        return httpx.Response(202, json={**body, "in_flight_images": 0})

    def status(self, request_id: str) -> httpx.Response:
        if self.failing_status_polls > 0:
            self.failing_status_polls -= 1
            return problem(503, "Service Unavailable", "restarting")
        if request_id not in self.requests:
            return problem(404, "Unknown request", f"no request with id {request_id}")
        return httpx.Response(200, json=self.requests[request_id].next_status())

    def request_resource(self, request: httpx.Request) -> httpx.Response:
        _, _, request_id, resource = request.url.path.split("/", 3)
        if request_id not in self.requests:
            return problem(404, "Unknown request", f"no request with id {request_id}")
        found = self.requests[request_id]
        if resource == "images":
            return images_page(found, request.url.params)
        if resource == "output.csv":
            return output_csv(found)
        return problem(404, "Not Found", resource)

    def uploads(self) -> list[httpx.Request]:
        return [r for r in self.received if r.url.path == "/upload"]


def images_page(found: FakeRequest, params: httpx.QueryParams) -> httpx.Response:
    limit = int(params.get("limit", "100"))
    start = int(params.get("cursor", "0"))
    items = found.images[start : start + limit]
    more = start + limit < len(found.images)
    return httpx.Response(200, json={"items": items, "next_cursor": str(start + limit) if more else None})


def output_csv(found: FakeRequest) -> httpx.Response:
    if not found.eventually_finished:
        return problem(409, "Request not finished", "the output CSV exists once every image is finished")
    lines = ["S. No.,Product Name,Input Image Urls,Output Image Urls"]
    for image in found.images:
        lines.append(
            f"{image['serial_number']},{image['product_name']},{image['input_url']},{image['output_url'] or ''}"
        )
    return httpx.Response(200, text="\r\n".join(lines) + "\r\n", headers={"content-type": "text/csv"})


def problem(status: int, title: str, detail: str, **extra: Any) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return httpx.Response(status, content=json.dumps(body), headers={"content-type": PROBLEM_JSON})


def image(
    serial: int,
    position: int,
    *,
    status: str = "done",
    input_bytes: int | None = 1000,
    output_bytes: int | None = 250,
    error: dict[str, str] | None = None,
    output_url: str | None = None,
) -> dict[str, Any]:
    done = status == "done"
    return {
        "image_id": str(uuid.uuid4()),
        "serial_number": serial,
        "product_name": f"Product {serial}",
        "position": position,
        "input_url": f"http://127.0.0.3/in/{serial}-{position}.png",
        "output_url": (output_url or f"{API_URL}/media/{serial}-{position}.jpg") if done else None,
        "status": status,
        "error": error,
        "input_bytes": input_bytes if done else None,
        "output_bytes": output_bytes if done else None,
        "width": 64 if done else None,
        "height": 48 if done else None,
    }


def failed_image(serial: int, position: int, code: str, message: str) -> dict[str, Any]:
    return image(serial, position, status="failed", error={"code": code, "message": message})


def json_of(result: Any) -> Any:
    """The single JSON document a --json run printed on stdout."""
    return json.loads(result.stdout)
