"""Local processes of the platform: processor workers (`yijian worker` subprocesses) for a given
Settings, used by the demo, the benchmark and the tests; and a reader that collects internal topics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from yijian.kafka import consumer
from yijian.processors.contracts import decode_batch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env(settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIJIAN_")}
    env.update(
        YIJIAN_HOME=str(settings.home),
        YIJIAN_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        YIJIAN_TOPIC_PREFIX=settings.topic_prefix,
        YIJIAN_TOPIC_PARTITIONS=str(settings.topic_partitions),
        YIJIAN_WORKER_WEB_PORT=str(free_port()),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Worker:
    def __init__(self, settings, name: str = "w1", loglevel: str = "warn", **env: str) -> None:
        env.setdefault("YIJIAN_PROCESSOR_DATA_DIR", str(Path(settings.home) / "processors" / name))
        self.env = worker_env(settings, **env)
        self.port = int(self.env["YIJIAN_WORKER_WEB_PORT"])
        self.log_path = Path(settings.home) / f"worker-{name}.log"
        settings.home.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "yijian.cli", "worker", "-l", loglevel],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=settings.home,
            start_new_session=True,  # Ctrl-C in a terminal reaches the parent, which stops us cleanly
        )

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()

    def get(self, path: str) -> tuple[int, bytes]:
        import urllib.request

        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                    return r.status, r.read()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def collect(settings, topics: list[str], until, timeout: float = 90, raw: bool = False) -> dict[str, list]:
    """Read topics from the beginning until ``until(got)`` holds; JSON batches are flattened."""
    c = consumer(settings, group_id=f"collect-{time.time_ns()}")
    c.subscribe([settings.topic(t) for t in topics])
    got: dict[str, list] = {t: [] for t in topics}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(got):
            for msg in c.consume(200, timeout=0.5):
                if msg.error():
                    continue
                name = msg.topic()[len(settings.topic_prefix):]
                if raw:
                    got[name].append(msg.value())
                else:
                    got[name].extend(decode_batch(msg.value())[1])
    finally:
        c.close()
    return got
