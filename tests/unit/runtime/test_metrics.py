"""Shared Prometheus instrumentation: HTTP requests are counted by route template and served."""

import httpx
from fastapi import FastAPI
from pipeline_runtime.metrics import install_metrics, record_lag


async def test_http_requests_are_counted_by_route_template_and_exposed():
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict:
        return {"id": thing_id}

    install_metrics(app, "unit-test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get("/things/1")
        await client.get("/things/2")
        body = (await client.get("/metrics")).text
    line = next(
        ln
        for ln in body.splitlines()
        if ln.startswith("http_requests_total{")
        and 'service="unit-test"' in ln
        and 'route="/things/{thing_id}"' in ln
    )
    assert line.endswith(" 2.0")
    assert any(
        ln.startswith("http_request_duration_seconds_count{")
        and 'route="/things/{thing_id}"' in ln
        and ln.endswith(" 2.0")
        for ln in body.splitlines()
    )


async def test_consumer_lag_is_the_distance_to_the_high_watermark():
    from prometheus_client import REGISTRY

    record_lag("unit-test", [("image.requested", 3, 40, 100), ("image.requested", 4, -1001, 5)])
    value = REGISTRY.get_sample_value(
        "imgpipe_consumer_lag_messages",
        {"service": "unit-test", "topic": "image.requested", "partition": "3"},
    )
    assert value == 60
    unknown = REGISTRY.get_sample_value(
        "imgpipe_consumer_lag_messages",
        {"service": "unit-test", "topic": "image.requested", "partition": "4"},
    )
    assert unknown is None


async def test_invented_methods_and_unmatched_paths_add_a_constant_number_of_series():
    from prometheus_client import REGISTRY

    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict:
        return {"id": thing_id}

    install_metrics(app, "label-test")

    def series() -> int:
        return sum(
            1
            for family in REGISTRY.collect()
            for sample in family.samples
            if sample.labels.get("service") == "label-test"
        )

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.request("FOO0", "/things/1")
        await client.request("FOO0", "/nowhere/0")
        before = series()
        for n in range(200):
            await client.request(f"INVENTED{n}", "/things/1")
            await client.request(f"INVENTED{n}", f"/nowhere/{n}")
            await client.get(f"/nowhere/{n}")
        after = series()

    assert before > 0
    assert after - before <= 40  # GET on an unmatched route: one more family member set, not 600
    methods = {
        sample.labels["method"]
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.labels.get("service") == "label-test"
    }
    assert methods <= {"GET", "other"}
