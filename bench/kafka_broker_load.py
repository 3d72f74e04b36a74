"""The broker's CPU under a paced, pipeline-shaped load of Kafka requests alone (issue 14).

Not a `make bench` section (the name has no `_bench`): a measuring tool for broker and JVM settings,
steadier than a pipeline run because nothing but Kafka's own clients runs and the pace is fixed,
so every variant sees the same requests over the same seconds.

    IMGPIPE_TEST_SLOT=N [IMGPIPE_KAFKA_JVM_OPTS=...] [IMGPIPE_KAFKA_BROKER_PROPS=...] \
        .venv/bin/python bench/kafka_broker_load.py [--rate 30] [--warm 240] [--images 300]

It stops the `test` profile's broker, empties its data directory and starts a fresh one (devstack,
the real topics), then plays the pipeline's traffic through pipeline_runtime's own adapters: an
"ingest" producer sends one event per image to `image.requested` (keyed by image id, so over its
12 partitions) at `--rate` images a second; a "compressor" group consumes them, sends one result
per image to `image.results` (keyed by request id, 100 images a request) and commits every 0.5 s;
a "tracker" group consumes the results and commits every 3 s. It prints the broker's CPU per
image for the first `--warm` images (JIT warm-up, as in the pipeline bench's warm-up request plus
its first images), for the next `--images`, and per second while idle, then stops the broker.
"""

import argparse
import asyncio
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from kafka_requests import learn_thread_names, print_threads, process_cpu, thread_cpu  # noqa: E402

IMAGES_PER_REQUEST = 100
COMPRESSOR_COMMIT_EVERY = 0.5
TRACKER_COMMIT_EVERY = 3.0
DRAIN_TIMEOUT = 60.0  # longest wait for the last image of a phase to reach the tracker


class Load:
    """The three roles, counting what the tracker role has seen."""

    def __init__(self, bootstrap: str) -> None:
        from pipeline_runtime.kafka import AsyncConsumer, AsyncProducer

        self.ingest = AsyncProducer(bootstrap, **{"client.id": "load-ingest"})
        self.results = AsyncProducer(bootstrap, **{"client.id": "load-compressor"})
        self.compressor = AsyncConsumer(bootstrap, "load-compressor", ["image.requested"])
        self.tracker = AsyncConsumer(bootstrap, "load-tracker", ["image.results"])
        self.tracked = 0
        self._target = 0
        self._reached = asyncio.Event()
        self._stop = asyncio.Event()

    async def start(self) -> None:
        await self.compressor.start()
        await self.tracker.start()
        self._tasks = [asyncio.create_task(self._compress()), asyncio.create_task(self._track())]

    async def _compress(self) -> None:
        from pipeline_runtime.kafka import next_offsets

        done, last_commit = [], time.monotonic()
        while not self._stop.is_set():
            batch = await self.compressor.consume(64, 0.5)
            sends = [self.results.send_nowait("image.results", m.value()[:36], m.value()) for m in batch]
            await asyncio.gather(*sends)
            done += batch
            if done and time.monotonic() - last_commit >= COMPRESSOR_COMMIT_EVERY:
                await self.compressor.commit(next_offsets(done))
                done, last_commit = [], time.monotonic()

    async def _track(self) -> None:
        from pipeline_runtime.kafka import next_offsets

        done, last_commit = [], time.monotonic()
        while not self._stop.is_set():
            batch = await self.tracker.consume(500, 0.5)
            self.tracked += len(batch)
            if self.tracked >= self._target:
                self._reached.set()
            done += batch
            if done and time.monotonic() - last_commit >= TRACKER_COMMIT_EVERY:
                await self.tracker.commit(next_offsets(done))
                done, last_commit = [], time.monotonic()

    async def play(self, images: int, rate: float) -> None:
        """Send `images` events at `rate` a second; return once the tracker role has them all."""
        target = self._target = self.tracked + images
        self._reached.clear()
        started = time.monotonic()
        request = str(uuid.uuid4())
        for n in range(images):
            if n % IMAGES_PER_REQUEST == 0:
                request = str(uuid.uuid4())
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            value = (request + ":" + str(uuid.uuid4())).encode() + b"x" * 300
            self.ingest.send_nowait("image.requested", str(uuid.uuid4()).encode(), value)
        try:
            await asyncio.wait_for(self._reached.wait(), DRAIN_TIMEOUT)
        except TimeoutError:
            raise TimeoutError(f"the tracker role saw {self.tracked} of {target} images") from None

    async def close(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.compressor.close()
        await self.tracker.close()
        self.ingest.close()
        self.results.close()


def fresh_broker():
    from devstack import kafka
    from devstack.profiles import PROFILES

    profile = PROFILES["test"]
    kafka.stop(profile)
    shutil.rmtree(kafka.data_dir(profile, 1), ignore_errors=True)
    shutil.rmtree(kafka.node_dir(profile, 1), ignore_errors=True)
    kafka.start(profile)
    return profile


async def measure(args: argparse.Namespace, bootstrap: str, broker: int) -> None:
    learn_thread_names(broker)
    load = Load(bootstrap)
    await load.start()
    await asyncio.sleep(args.settle)  # both groups join; not part of any window
    for name, images in (("warm-up", args.warm), ("then", args.images)):
        cpu, threads, started = process_cpu(broker), thread_cpu(broker), time.monotonic()
        await load.play(images, args.rate)
        cpu, seconds = process_cpu(broker) - cpu, time.monotonic() - started
        print(
            f"{name}: {images} images in {seconds:.1f}s: broker {1000 * cpu / images:.2f} ms CPU per image; "
            f"load {os.getloadavg()[0]:.2f}"
        )
        print_threads(threads, thread_cpu(broker), images, "image")
    cpu = process_cpu(broker)
    await asyncio.sleep(args.idle)
    print(
        f"idle {args.idle:.0f}s: broker {1000 * (process_cpu(broker) - cpu) / args.idle:.1f} ms CPU per second"
    )
    await load.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=30.0, help="images a second")
    parser.add_argument("--warm", type=int, default=240)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from devstack import kafka, procs

    started = time.monotonic()
    profile = fresh_broker()
    try:
        broker = procs.read_pid(profile.run_dir, "kafka")
        assert broker is not None, "no broker of this stack is running"
        print(f"broker up in {time.monotonic() - started:.1f}s; {os.environ.get(kafka.JVM_OPTS_ENV, '')}")
        asyncio.run(measure(args, profile.bootstrap_servers, broker))
    finally:
        kafka.stop(profile)


if __name__ == "__main__":
    main()
