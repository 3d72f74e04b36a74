"""The broker's request log is written only when asked for (it costs the broker CPU); the options
for measuring (extra JVM options and broker properties) come last; the JVM takes the broker's options."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from devstack import kafka


def test_no_request_logger_unless_asked(monkeypatch, tmp_path: Path):
    monkeypatch.delenv(kafka.REQUEST_LOG_ENV, raising=False)
    assert "kafka.request.logger" not in kafka.log4j2_properties(tmp_path)
    monkeypatch.setenv(kafka.REQUEST_LOG_ENV, "0")
    assert "kafka.request.logger" not in kafka.log4j2_properties(tmp_path)


def test_asked_for_it_logs_every_request_to_its_own_file(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(kafka.REQUEST_LOG_ENV, "1")
    conf = kafka.log4j2_properties(tmp_path)
    assert conf.startswith(kafka.LOG4J2)  # the broker's own log is unchanged
    assert "logger.request.name = kafka.request.logger" in conf
    assert "logger.request.level = debug" in conf  # debug: one line per completed request
    assert "logger.request.additivity = false" in conf  # not into the broker's log as well
    assert f"appender.requests.fileName = {tmp_path / 'requests.log'}" in conf


def test_extra_jvm_options_come_last_so_they_win(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(kafka.JVM_OPTS_ENV, "-XX:TieredStopAtLevel=4 -Xss1m")
    argv = kafka.java_command(tmp_path, tmp_path, heap="256m")
    tiers = [a for a in argv if a.startswith("-XX:TieredStopAtLevel=")]
    assert tiers == ["-XX:TieredStopAtLevel=1", "-XX:TieredStopAtLevel=4"]
    assert argv.index("-Xss1m") < argv.index("-cp")


def test_extra_broker_properties_come_last_so_they_win(monkeypatch):
    from devstack.profiles import PROFILES

    monkeypatch.setenv(kafka.BROKER_PROPS_ENV, "num.io.threads=4; num.network.threads=1;")
    lines = kafka.server_properties(PROFILES["dev"]).splitlines()
    io = [line for line in lines if line.startswith("num.io.threads=")]
    assert io == ["num.io.threads=2", "num.io.threads=4"]
    assert lines[-1] == "num.network.threads=1"
    monkeypatch.delenv(kafka.BROKER_PROPS_ENV)
    plain = kafka.server_properties(PROFILES["dev"]).splitlines()
    assert [line for line in plain if line.startswith("num.io.threads=")] == ["num.io.threads=2"]


COLLECTORS = ("UseSerialGC", "UseParallelGC", "UseG1GC", "UseZGC", "UseShenandoahGC")


def collector_in_effect(argv: list[str]) -> str:
    """Ask the JVM which collector these options give (it refuses conflicting ones at start)."""
    options = [a for a in argv if a.startswith("-X")]
    java = shutil.which("java")
    assert java is not None
    done = subprocess.run(  # noqa: S603 - fixed program, options from java_command
        [java, *options, "-XX:+PrintFlagsFinal", "-version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    flags = dict(line.split()[1:4:2] for line in done.stdout.splitlines() if len(line.split()) > 3)
    return ",".join(name for name in COLLECTORS if flags.get(name) == "true")


@pytest.mark.skipif(shutil.which("java") is None, reason="no java on PATH to ask")
def test_the_broker_runs_the_serial_collector_and_g1_can_be_put_back(monkeypatch, tmp_path: Path):
    monkeypatch.delenv(kafka.JVM_OPTS_ENV, raising=False)
    assert collector_in_effect(kafka.java_command(tmp_path, tmp_path, heap="256m")) == "UseSerialGC"
    monkeypatch.setenv(kafka.JVM_OPTS_ENV, "-XX:-UseSerialGC -XX:+UseG1GC")
    assert collector_in_effect(kafka.java_command(tmp_path, tmp_path, heap="256m")) == "UseG1GC"
