"""A private Redis server the reliability tests may stop and start, and the cache and Celery
broker of the test pointed at it (the suite's shared Redis is never touched)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.workflows.support import set_eager

READY_WITHIN = 15  # seconds: an upper bound for a local redis-server to answer, not a measurement


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """`redis-server` on a port of its own; stop() kills it outright. It saves nothing by itself,
    but what a test SAVEs explicitly is loaded again by the next start (a Redis that was cut off
    and kept its data)."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.log_path = directory / "redis.log"
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=READY_WITHIN)

    def start(self) -> None:
        assert self.process is None, "already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.directory),
                    "--dbfilename",
                    "dump.rdb",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_WITHIN
        while True:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(READY_WITHIN)
            self.process = None


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("the reliability tests need the redis-server binary")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _use_broker(url: str) -> None:
    """Point the Celery app at another broker; its connection pools were made for the old one."""
    from finaegis.celery import app

    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def on_private_redis(settings, private_redis):
    """The cache (apps.core.cache.FallbackRedisCache, as finaegis/settings.py selects it) and the
    Celery broker use the private server; tasks go to the broker, not run in-process. The
    fallback retries Redis on every call, so a test needs no clock to see it come back."""
    url = private_redis.url()
    settings.CACHES = {
        "default": {
            "BACKEND": "apps.core.cache.FallbackRedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "finaegis",
            "OPTIONS": {
                "socket_connect_timeout": 0.5,
                "socket_timeout": 1.0,
                "FALLBACK_RETRY_SECONDS": 0,
            },
        }
    }
    from finaegis.celery import app

    previous_broker = app.conf.broker_url
    settings.CELERY_BROKER_URL = url
    _use_broker(url)
    previous_eager = set_eager(False)
    yield private_redis
    set_eager(previous_eager)
    _use_broker(previous_broker)
