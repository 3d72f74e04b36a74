"""Hostile input on the running stack: formulas in the output CSV, and secrets that must never be logged."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid

import httpx
import pytest

from tests.support.api import bearer, upload_csv, wait_for_completion
from tests.support.images import photo_jpeg
from tests.support.servers import answers, serving, wait_until

pytestmark = pytest.mark.e2e

FORMULAS = ['=HYPERLINK("http://x","y")', "+SUM(1,2)", "-2+3", "@cmd|' /C calc'!A0"]


@pytest.fixture
async def image_host():
    async with serving({"a.jpg": photo_jpeg(64, 48, seed=11)}) as server:
        yield server


def products_csv(names: list[str], url: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["S. No.", "Product Name", "Input Image Urls"])
    writer.writerows((n, name, url) for n, name in enumerate(names, start=1))
    return out.getvalue().encode()


async def test_a_product_name_a_spreadsheet_would_run_comes_back_neutralised_in_the_output_csv(
    ingest_url, tracker_url, image_host, auth_headers
):
    names = [*FORMULAS, "Plain Lamp"]
    accepted = await upload_csv(
        ingest_url, products_csv(names, image_host.url("a.jpg")), headers=auth_headers
    )
    await wait_for_completion(accepted["status_url"], timeout=60, headers=auth_headers)
    path = f"/requests/{accepted['request_id']}/output.csv"
    async with httpx.AsyncClient(timeout=30, headers=auth_headers) as http:
        direct = await http.get(tracker_url + path)
        through_ingest = await http.get(ingest_url + path)
        images = (await http.get(f"{tracker_url}/requests/{accepted['request_id']}/images")).json()

    assert direct.status_code == 200, direct.text
    assert through_ingest.content == direct.content
    rows = list(csv.reader(io.StringIO(direct.text)))[1:]
    assert [row[1] for row in rows] == ["'" + name for name in FORMULAS] + ["Plain Lamp"]
    assert rows[0][1] == '\'=HYPERLINK("http://x","y")'
    assert all(row[2].startswith("http://") and row[3].startswith("http://") for row in rows)
    assert [i["product_name"] for i in images["items"]] == names  # JSON is not a spreadsheet: kept as sent


async def test_no_log_line_of_any_service_carries_a_key_a_webhook_secret_or_a_credential(
    pipeline, ingest_url, notifier_url, image_host, subscriber
):
    subscriber.routes.update({"upload-hook": answers(), "subscription": answers()})
    bootstrap, signing_secret = pipeline.api_key(), pipeline.webhook_secret()
    tenant = f"logs-{uuid.uuid4().hex[:8]}"
    password = f"hunter2-{uuid.uuid4().hex}"
    stranger = f"imgp_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    async with httpx.AsyncClient(timeout=30) as http:
        made = await http.post(
            f"{ingest_url}/keys",
            json={"tenant_id": tenant, "scopes": ["upload", "read", "webhooks"], "name": "logs"},
            headers=bearer(bootstrap),
        )
        key = made.json()["key"]
        created = await http.post(
            f"{notifier_url}/subscriptions", json={"url": subscriber.url("subscription")}, headers=bearer(key)
        )
        subscription_secret = created.json()["secret"]
        hostile = [
            await http.post(
                f"{ingest_url}/upload",
                files={"file": ("p.csv", products_csv(["Lamp"], image_host.url("a.jpg")), "text/csv")},
                data={"webhook_url": f"https://user:{password}@hooks.example/x"},
                headers=bearer(key),
            ),
            await http.post(
                f"{ingest_url}/upload",
                files={
                    "file": (
                        "p.csv",
                        products_csv(["Lamp"], f"http://user:{password}@127.0.0.1/a.jpg"),
                        "text/csv",
                    )
                },
                headers=bearer(key),
            ),
            await http.get(f"{notifier_url}/dead-letters", headers=bearer(stranger)),
            await http.post(f"{ingest_url}/upload", headers={"Authorization": f"Bearer {password}"}),
        ]
    accepted = await upload_csv(
        ingest_url,
        products_csv(["Lamp"], image_host.url("a.jpg")),
        headers=bearer(key),
        webhook_url=subscriber.url("upload-hook"),
    )
    await wait_for_completion(accepted["status_url"], timeout=60, headers=bearer(key))

    async def both_webhooks_arrived() -> bool:
        return bool(subscriber.hits("upload-hook")) and bool(subscriber.hits("subscription"))

    assert await wait_until(both_webhooks_arrived, timeout=30)
    assert made.status_code == 201
    assert created.status_code == 201
    assert [r.status_code for r in hostile] == [422, 422, 401, 401]
    secrets = {
        "bootstrap key": bootstrap,
        "tenant key": key,
        "unknown key": stranger,
        "webhook signing secret": signing_secret.removeprefix("whsec_"),
        "subscription secret": subscription_secret.removeprefix("whsec_"),
        "URL password": password,
    }
    await asyncio.sleep(1.0)  # let every service flush its last lines
    logs = {log.name: log.read_text(errors="replace") for log in (pipeline.run_dir / "logs").glob("*.log")}
    found = [
        f"{name} in {log}" for log, text in logs.items() for name, secret in secrets.items() if secret in text
    ]
    assert accepted["request_id"] in logs["ingest.log"]  # these are the logs of this run
    assert not found, found
