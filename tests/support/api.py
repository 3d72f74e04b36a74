"""Small clients for the pipeline's HTTP APIs, shared by end-to-end tests."""

from __future__ import annotations

import httpx

from tests.support.servers import wait_until


async def upload_csv(ingest_url: str, csv: bytes, *, expect: int = 202, headers=None, **form: str) -> dict:
    async with httpx.AsyncClient(timeout=60) as client:
        resp = await client.post(
            f"{ingest_url}/upload",
            files={"file": ("products.csv", csv, "text/csv")},
            data=form,
            headers=headers,
        )
    assert resp.status_code == expect, resp.text
    return resp.json()


async def wait_for_completion(status_url: str, timeout: float = 120, *, headers=None) -> dict:
    """Poll the status URL until completed_at is set (bounded); returns the last status."""
    latest: dict = {}

    async def finished() -> bool:
        async with httpx.AsyncClient(timeout=10, headers=headers) as client:
            resp = await client.get(status_url)
        if resp.status_code == 200:
            latest.clear()
            latest.update(resp.json())
        return latest.get("completed_at") is not None

    assert await wait_until(finished, timeout=timeout), f"not finished in {timeout}s: {latest}"
    return latest


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def csv_of(rows: list[tuple[int, str, list[str]]]) -> bytes:
    lines = ["S. No.,Product Name,Input Image Urls"]
    lines += [f'{serial},{name},"{",".join(urls)}"' for serial, name, urls in rows]
    return ("\n".join(lines) + "\n").encode()
