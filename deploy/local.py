"""Local processes of the platform: processor workers (`yijian worker` subprocesses) for a given
Settings, used by the demo, the benchmark and the tests; and a reader that collects internal topics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
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
    """One `yijian worker` subprocess with its own web port, data folder and log file."""

    def __init__(self, settings, name: str = "w1", loglevel: str = "warn", **env: str) -> None:
        app_id = env.get("YIJIAN_PROCESSOR_APP_ID", settings.processor_app_id)
        env.setdefault("YIJIAN_PROCESSOR_DATA_DIR", str(Path(settings.home) / "processors" / app_id / name))
        self.env = worker_env(settings, **env)
        self.port = int(self.env["YIJIAN_WORKER_WEB_PORT"])
        self.log_path = Path(settings.home) / f"worker-{name}.log"
        settings.home.mkdir(parents=True, exist_ok=True)
        self.loglevel = loglevel
        self.cwd = settings.home
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "yijian.cli", "worker", "-l", self.loglevel],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.cwd,
            start_new_session=True,  # Ctrl-C in a terminal reaches the parent, which stops us cleanly
        )

    def restart(self) -> None:
        """Kill and start again (what a liveness probe does to a stalled replica)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
        self.restarts += 1
        self._start()

    def health_status(self) -> int | None:
        """HTTP status of /health (200 ok, 503 stalled), None when it does not answer."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

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


class Supervisor:
    """Restarts replicas whose /health says they are stalled (a liveness probe, locally)."""

    def __init__(self, workers: list[Worker], interval: float = 5.0, on_restart=None) -> None:
        import threading

        self.workers = workers
        self.interval = interval
        self.on_restart = on_restart
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> "Supervisor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for w in list(self.workers):
                if w.proc.poll() is None and w.health_status() == 503:
                    w.restart()
                    if self.on_restart:
                        self.on_restart(w)


RAW_TOPICS = ("raw.encounter", "raw.prescription", "raw.charge", "raw.control")


def wait_assigned(workers: list[Worker], timeout: float = 120) -> list[int]:
    """Until every replica reports assigned partitions on /health; returns each one's share."""
    import json

    deadline = time.monotonic() + timeout
    shares: list[int] = []
    while time.monotonic() < deadline:
        shares = [json.loads(w.get("/health")[1])["partitions_assigned"] for w in workers]
        if all(shares):
            break
        time.sleep(0.5)
    return shares


def wait_until_drained(settings, timeout: float = 600, on_status=None, interval: float = 2.0) -> bool:
    """Until the processors and the sink have consumed everything (lag 0 twice in a row), then the
    sink's last batch. ``on_status(lag_processors, lag_sink)`` is called at each look. Returns whether
    it drained before ``timeout``."""
    from yijian.kafka import group_lag
    from yijian.sinks.sink import SOURCE_TOPICS

    s = settings
    raw = [s.topic(t) for t in RAW_TOPICS]
    sink_topics = [s.topic(t) for t in SOURCE_TOPICS]
    deadline = time.monotonic() + timeout
    zero = 0
    while time.monotonic() < deadline and zero < 2:
        lag_p = group_lag(s, s.processor_app_id, raw)
        lag_s = group_lag(s, s.sink_group_id, sink_topics)
        if on_status:
            on_status(lag_p, lag_s)
        zero = zero + 1 if lag_p == 0 and lag_s == 0 else 0
        time.sleep(interval)
    time.sleep(max(2.0, s.sink_batch_seconds * 2))  # the sink's last batch
    return zero >= 2


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


class LocalPlatform:
    """keys + refdata + rule packs → replicas (with a Supervisor) → sink in a thread."""

    def __init__(self, settings, res, replicas: int = 2, sink_client=None, **worker_env: str) -> None:
        from yijian.keyring import load_keyring, save_keyring
        from yijian.processors.refdata_state import publish as publish_refdata
        from yijian.rules.deployment import publish as publish_pack
        from yijian.rules.model import load_packs
        from yijian.sinks.sink import ClickHouseSink

        self.worker_env = {"YIJIAN_STALL_AFTER_S": "20", **worker_env}
        self.settings = settings
        self.res = res
        ring = load_keyring(settings)
        for inst in res.by_institution:
            if not ring.entries(inst):
                ring.new(inst)
        save_keyring(settings, ring)
        self.ring = ring
        publish_refdata(settings, res.refdata_updates())
        for pack in load_packs():
            publish_pack(settings, pack)
        self.stop_event = threading.Event()
        self.sink = ClickHouseSink(settings, client=sink_client)
        self.sink_thread = threading.Thread(target=self.sink.run, args=(self.stop_event,), name="sink", daemon=True)
        self.sink_thread.start()
        self.workers = [Worker(settings, name=f"w{i + 1}", **self.worker_env) for i in range(replicas)]
        if not all(wait_assigned(self.workers)):
            raise RuntimeError("processor replicas did not get partitions")
        self.supervisor = Supervisor(self.workers).start()
        self.n = replicas

    def add_replica(self) -> Worker:
        self.n += 1
        w = Worker(self.settings, name=f"w{self.n}", **self.worker_env)
        self.workers.append(w)
        return w

    def publish(self, rate: float | None = None):
        from yijian.producers.sim_publisher import publish_simulation

        return publish_simulation(self.settings, self.res, self.ring, rate=rate)

    def drain(self, timeout: float = 240):
        if not wait_until_drained(self.settings, timeout):
            raise TimeoutError("processors or sink did not drain")
        return self.sink.client

    def close(self) -> None:
        self.supervisor.stop()
        for w in self.workers:
            w.stop()
        self.stop_event.set()
        self.sink_thread.join(30)
