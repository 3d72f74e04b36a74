"""Hostile cases that need the whole pipeline: the output CSV, webhooks, subscriptions, streams."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import uuid

import asyncpg
import httpx

from tests.security.cases import Outcome, case
from tests.security.probes import MIB, pids, rss_bytes
from tests.security.stage import Stage
from tests.support.api import csv_of, upload_csv, wait_for_completion
from tests.support.servers import answers, wait_until
from tests.support.webhooks import verify_standard_webhook

HEADER = "S. No.,Product Name,Input Image Urls"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@case("product name with a newline and a formula", "output CSV: one record, one quoted neutralised cell")
async def case_csv_newline_formula(stage: Stage) -> Outcome:
    key = await stage.new_key()
    name = "Lamp\n=cmd|' /C calc'!A0"
    body = f'{HEADER}\n1,"{name}",{stage.host.url("a.jpg")}\n'.encode()
    accepted = await upload_csv(stage.ingest, body, headers=key["headers"])
    await wait_for_completion(accepted["status_url"], timeout=60, headers=key["headers"])
    async with httpx.AsyncClient(timeout=30, headers=key["headers"]) as http:
        text = (await http.get(f"{stage.ingest}/requests/{accepted['request_id']}/output.csv")).text
    records = list(csv.reader(io.StringIO(text, newline="")))[1:]
    formula_lines = [line for line in text.splitlines() if line.startswith(FORMULA_STARTS)]
    cell = records[0][1] if records else None
    ok = len(records) == 1 and cell == "Lamp\n'=cmd|' /C calc'!A0" and not formula_lines
    return Outcome(f"{len(records)} record, name cell {cell!r}, {len(formula_lines)} formula lines", ok)


@case("tenant B deletes tenant A's subscription", "404; A's subscription and pending deliveries unchanged")
async def case_cross_tenant_delete(stage: Stage) -> Outcome:
    owner = await stage.new_key(scopes=("upload", "read", "webhooks"))
    stranger = await stage.new_key(scopes=("webhooks",))
    async with httpx.AsyncClient(timeout=30) as http:
        made = await http.post(
            f"{stage.notifier}/subscriptions",
            json={"url": stage.host.url("silent")},
            headers=owner["headers"],
        )
        subscription_id = made.json()["subscription_id"]
        await upload_csv(
            stage.ingest, csv_of([(1, "Mug", [stage.host.url("a.jpg")])]), headers=owner["headers"]
        )
        pending = await wait_until(lambda: pending_deliveries(stage, subscription_id), timeout=60)
        refused = await http.delete(
            f"{stage.notifier}/subscriptions/{subscription_id}", headers=stranger["headers"]
        )
        cancelled, live = await subscription_state(stage, subscription_id)
        listed = await http.get(f"{stage.notifier}/subscriptions", headers=owner["headers"])
        own = await http.delete(f"{stage.notifier}/subscriptions/{subscription_id}", headers=owner["headers"])
    still_listed = any(s["subscription_id"] == subscription_id for s in listed.json())
    ok = (
        pending
        and refused.status_code == 404
        and live
        and still_listed
        and cancelled == 0
        and own.status_code == 204
    )
    return Outcome(
        f"{refused.status_code}; subscription live={live}, listed={still_listed}, "
        f"deliveries cancelled={cancelled} (a delivery was pending: {pending}); owner's delete {own.status_code}",
        ok,
    )


async def pending_deliveries(stage: Stage, subscription_id: str) -> bool:
    conn = await asyncpg.connect(stage.database_url)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = $1 AND status = 'pending'",
            uuid.UUID(subscription_id),
        )
    finally:
        await conn.close()
    return bool(found)


async def subscription_state(stage: Stage, subscription_id: str) -> tuple[int, bool]:
    """Deliveries of the subscription cancelled by a delete, and whether it is still live."""
    conn = await asyncpg.connect(stage.database_url)
    try:
        sid = uuid.UUID(subscription_id)
        cancelled = await conn.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = $1"
            " AND last_error = 'subscription deleted'",
            sid,
        )
        live = await conn.fetchval(
            "SELECT deleted_at IS NULL FROM webhook_subscriptions WHERE subscription_id = $1", sid
        )
    finally:
        await conn.close()
    return cancelled, bool(live)


@case("subscriber answers 200 with an endless body", "delivered; excerpt <= 4 KiB; notifier RSS +< 50 MiB")
async def case_endless_answer(stage: Stage) -> Outcome:
    key = await stage.new_key()
    notifier_pid = pids(stage.run_dir)["notifier"]
    before = peak = rss_bytes(notifier_pid) or 0
    accepted = await upload_csv(
        stage.ingest,
        csv_of([(1, "Mug", [stage.host.url("a.jpg")])]),
        headers=key["headers"],
        webhook_url=stage.host.url("endless"),
    )
    url = f"{stage.notifier}/requests/{accepted['request_id']}/deliveries"
    log: list[dict] = []

    async def delivered() -> bool:
        nonlocal peak
        peak = max(peak, rss_bytes(notifier_pid) or 0)
        async with httpx.AsyncClient(timeout=10, headers=key["headers"]) as http:
            resp = await http.get(url)
        log[:] = resp.json() if resp.status_code == 200 else []
        return any(a["delivery_status"] == "delivered" for a in log)

    done = await wait_until(delivered, timeout=60, interval=0.1)
    excerpt = max((len(a["response_excerpt"] or "") for a in log), default=0)
    grown = (peak - before) / MIB
    ok = done and excerpt <= 4096 and grown < 50 and stage.endless_sent < 512 * MIB
    return Outcome(
        f"delivered={done}; excerpt {excerpt} B; subscriber wrote {stage.endless_sent // 1024} KiB; "
        f"notifier RSS {before / MIB:.0f} -> peak {peak / MIB:.0f} MiB",
        ok,
    )


@case("one key opens many progress streams through ingest", "429 beyond the cap; another tenant's status 200")
async def case_many_streams(stage: Stage) -> Outcome:
    hog, other = await stage.new_key(), await stage.new_key()
    stage.host.release.clear()
    held = await upload_csv(
        stage.ingest, csv_of([(1, "Lamp", [stage.host.url("held.jpg")])]), headers=hog["headers"]
    )
    mine = await upload_csv(
        stage.ingest, csv_of([(1, "Mug", [stage.host.url("a.jpg")])]), headers=other["headers"]
    )
    events = f"{stage.ingest}/requests/{held['request_id']}/events"
    opened, refused = 0, None
    async with httpx.AsyncClient(timeout=15, limits=httpx.Limits(max_connections=40)) as http:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(31):  # above every per-key and per-tenant cap of ingest and tracker
                status = await open_stream(stack, http, events, hog["headers"])
                if status != 200:
                    refused = status
                    break
                opened += 1
            reads = [
                (await http.get(mine["status_url"], headers=other["headers"])).status_code for _ in range(5)
            ]
            via_ingest = await http.get(
                f"{stage.ingest}/status/{mine['request_id']}", headers=other["headers"]
            )
    stage.host.release.set()
    ok = refused == 429 and 1 <= opened <= 10 and reads == [200] * 5 and via_ingest.status_code == 200
    return Outcome(
        f"{opened} opened, then {refused}; other tenant's status: {reads[0]} x{len(reads)}, "
        f"through ingest {via_ingest.status_code}",
        ok,
    )


async def open_stream(stack: contextlib.AsyncExitStack, http: httpx.AsyncClient, url: str, headers) -> int:
    """Open a progress stream and keep it open (in `stack`); its status, after the first event if 200."""
    resp = await stack.enter_async_context(http.stream("GET", url, headers=headers))
    if resp.status_code == 200:
        lines = resp.aiter_lines()
        stack.push_async_callback(lines.aclose)
        async for line in lines:
            if line.startswith("event: progress"):
                break
    return resp.status_code


@case("tenant B (or the global secret) signs tenant A's webhook", "verifies only with A's own secret")
async def case_per_tenant_signing(stage: Stage) -> Outcome:
    owner = await stage.new_key(scopes=("upload", "read", "webhooks"))
    other = await stage.new_key(scopes=("webhooks",))
    async with httpx.AsyncClient(timeout=30) as http:
        mine = (await http.post(f"{stage.notifier}/signing-secret", headers=owner["headers"])).json()[
            "secret"
        ]
        theirs = (await http.post(f"{stage.notifier}/signing-secret", headers=other["headers"])).json()[
            "secret"
        ]
    route = f"hook-{uuid.uuid4().hex[:8]}"
    stage.host.routes[route] = answers()
    body = csv_of([(1, "Mug", [stage.host.url("a.jpg")])])
    await upload_csv(stage.ingest, body, headers=owner["headers"], webhook_url=stage.host.url(route))
    arrived = await wait_until(lambda: has_hits(stage, route), timeout=60)
    hit = stage.host.hits(route)[0] if arrived else None
    verifies = {
        label: bool(hit) and verify_standard_webhook(secret, hit.headers, hit.body)
        for label, secret in (("own", mine), ("other tenant's", theirs), ("global", stage.webhook_secret))
    }
    return Outcome(
        ", ".join(f"{label}: {ok}" for label, ok in verifies.items()),
        verifies == {"own": True, "other tenant's": False, "global": False},
    )


async def has_hits(stage: Stage, route: str) -> bool:
    return bool(stage.host.hits(route))


async def image_after_redirect(stage: Stage, route: str) -> dict:
    """Upload one image whose host redirects (route of the stage's host); its final image row."""
    key = await stage.new_key()
    accepted = await upload_csv(
        stage.ingest, csv_of([(1, "Lamp", [stage.host.url(route)])]), headers=key["headers"]
    )
    await wait_for_completion(accepted["status_url"], timeout=60, headers=key["headers"])
    async with httpx.AsyncClient(timeout=30, headers=key["headers"]) as http:
        page = await http.get(f"{stage.ingest}/requests/{accepted['request_id']}/images")
    return page.json()["items"][0]


@case("redirect to http://user:pw@host/", "image failed; no credentials sent")
async def case_redirect_with_credentials(stage: Stage) -> Outcome:
    image = await image_after_redirect(stage, "to-credentials")
    sent = [r for r in stage.host.hits("creds.jpg") if "Authorization" in r.headers]
    code = (image["error"] or {}).get("code")
    return Outcome(
        f"{image['status']} {code}; requests with credentials: {len(sent)}",
        image["status"] == "failed" and not sent,
    )


@case("redirect to a host label of 64 characters", "image failed bad_url")
async def case_redirect_to_long_label(stage: Stage) -> Outcome:
    image = await image_after_redirect(stage, "to-long-label")
    code = (image["error"] or {}).get("code")
    return Outcome(f"{image['status']} {code}", image["status"] == "failed" and code == "bad_url")


@case("guess a /media name from the request id and URL", "404; the name is only in the results")
async def case_guessable_media(stage: Stage) -> Outcome:
    key = await stage.new_key()
    url = stage.host.url("a.jpg")
    accepted = await upload_csv(stage.ingest, csv_of([(1, "Lamp", [url])]), headers=key["headers"])
    await wait_for_completion(accepted["status_url"], timeout=60, headers=key["headers"])
    guess = f"{accepted['request_id']}/{hashlib.sha256(url.encode()).hexdigest()[:32]}.jpg"
    async with httpx.AsyncClient(timeout=30, headers=key["headers"]) as http:
        page = await http.get(f"{stage.ingest}/requests/{accepted['request_id']}/images")
        real = page.json()["items"][0]["output_url"]
        guessed = await http.get(f"{stage.tracker}/media/{guess}")
        found = await http.get(real)
    ok = guessed.status_code == 404 and found.status_code == 200 and not real.endswith(guess)
    return Outcome(f"guessed name: {guessed.status_code}; the result's URL: {found.status_code}", ok)
