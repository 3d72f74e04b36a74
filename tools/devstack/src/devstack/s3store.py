"""An S3-compatible object store of the project's own: s3proxy (Maven Central) on local disk.

s3proxy keeps each object as a file under its data directory (jclouds' filesystem provider): a
real server, restartable, whose objects outlive it. Writes need the stack's key; objects are
put with the `public-read` ACL, which s3proxy serves to anonymous GETs, so output URLs work in
a browser while nobody without the key can write.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from . import ports, procs
from .profiles import CACHE_DIR, OBJECT_STORE_BUCKET, REPO_ROOT, Profile
from .system import maven_classpath

S3PROXY_VERSION = "2.7.0"
POM = REPO_ROOT / "infra" / "s3proxy" / "pom.xml"
NAME = "object-store"
READY_TIMEOUT = 60.0

LOGBACK = """\
<configuration>
  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level %logger{24} %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="OUT"/></root>
  <logger name="org.gaul.s3proxy.Main" level="INFO"/>
</configuration>
"""


def libs_dir() -> Path:
    return CACHE_DIR / f"s3proxy-{S3PROXY_VERSION}" / "libs"


def ensure_jars() -> Path:
    """Resolve s3proxy's classpath once; later starts download nothing."""
    return maven_classpath(POM, libs_dir(), {"s3proxy.version": S3PROXY_VERSION})


def data_dir(profile: Profile) -> Path:
    return profile.run_dir / "object-store" / "data"


def properties(profile: Profile) -> str:
    creds = profile.object_store_credentials()
    return "\n".join(
        [
            f"s3proxy.endpoint={profile.object_store_url}",
            "s3proxy.authorization=aws-v2-or-v4",
            f"s3proxy.identity={creds['AWS_ACCESS_KEY_ID']}",
            f"s3proxy.credential={creds['AWS_SECRET_ACCESS_KEY']}",
            "jclouds.provider=filesystem",
            f"jclouds.filesystem.basedir={data_dir(profile)}",
            "",
        ]
    )


def ports_of(profile: Profile) -> dict[str, dict[str, int]]:
    return {NAME: {NAME: profile.object_store_port}} if profile.object_store_port else {}


def start(profile: Profile) -> None:
    """Start the store (if the profile has one and it is not running), wait, create the bucket."""
    if not profile.object_store_port:
        return
    if procs.read_pid(profile.run_dir, NAME) is None:
        ports.require_free(ports_of(profile)[NAME])
        libs = ensure_jars()
        conf = profile.run_dir / "object-store"
        (data_dir(profile) / OBJECT_STORE_BUCKET).mkdir(parents=True, exist_ok=True)
        (conf / "s3proxy.conf").write_text(properties(profile))
        (conf / "logback.xml").write_text(LOGBACK)
        argv = [
            "java",
            "-Xmx256m",
            "-XX:+UseSerialGC",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            "-cp",
            f"{libs}/*",
            "org.gaul.s3proxy.Main",
            "--properties",
            str(conf / "s3proxy.conf"),
        ]
        procs.start(profile.run_dir, NAME, argv, {}, REPO_ROOT)
    wait_ready(profile)


def wait_ready(profile: Profile, timeout: float = READY_TIMEOUT) -> None:
    """Until the store answers HTTP at all (an anonymous listing is refused with 403: it is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if procs.read_pid(profile.run_dir, NAME) is None:
            raise RuntimeError(f"the object store exited; see {profile.run_dir / 'logs' / (NAME + '.log')}")
        try:
            with urllib.request.urlopen(profile.object_store_url + "/", timeout=2):  # noqa: S310 - own store
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise TimeoutError(f"object store at {profile.object_store_url} not ready after {timeout:.0f}s")


def stop(profile: Profile) -> None:
    procs.stop(profile.run_dir, NAME, grace=10.0)
