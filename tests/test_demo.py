"""`yijian demo` (what `make demo` runs), as a user runs it: a subprocess on the real broker with its own
home, topic prefix and embedded ClickHouse. A small province keeps it short; the default is 200
institutions.

- It ends with the province summary, the ground-truth comparison (every injected quality fault found
  as often as injected), where the data lives, how to query it and the dashboard address.
- Ctrl-C (SIGINT) or SIGTERM mid-run stops every process it started: nothing is left behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def demo_env(broker: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIJIAN_")}
    env.update(YIJIAN_HOME=str(home), YIJIAN_KAFKA_BOOTSTRAP=broker, YIJIAN_TOPIC_PREFIX=f"demo{uuid.uuid4().hex[:8]}.",
               YIJIAN_TOPIC_PARTITIONS="2", PYTHONUNBUFFERED="1", COLUMNS="200", TERM="dumb")
    return env


def descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for c in map(int, children):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cleanup(env: dict[str, str]) -> None:
    from yijian.config import Settings
    from yijian.kafka import delete_topics_with_prefix

    delete_topics_with_prefix(Settings(kafka_bootstrap=env["YIJIAN_KAFKA_BOOTSTRAP"]), env["YIJIAN_TOPIC_PREFIX"])


def test_demo_ends_with_summary_ground_truth_and_where_things_are(broker, tmp_path):
    env = demo_env(broker, tmp_path / "home")
    try:
        r = subprocess.run([sys.executable, "-m", "yijian.cli", "demo", "--institutions", "12", "--encounters", "150", "--replicas", "1"],
                           env=env, cwd=REPO, capture_output=True, text=True, timeout=280)
        out = r.stdout
        assert r.returncode == 0, out[-3000:] + r.stderr[-3000:]
        assert "province summary" in out and "yijian demo: done" in out
        assert re.search(r"encounter records\s*│\s*[1-9]", out), out[-3000:]
        for where in ("Data:", "ClickHouse", "Query:", "yijian query", "Dashboard:", "http://"):
            assert where in out
        # the ground-truth table: every quality code the simulator injected, found as often
        rows = re.findall(r"│\s*([a-z_]+)\s*│\s*(\d+|–)\s*│\s*(\d+)\s*│", out.split("ground truth vs platform", 1)[1])
        assert len(rows) >= 3, out[-3000:]
        assert [(code, injected) for code, injected, found in rows if injected != found] == []
        assert (tmp_path / "home" / "simulation" / "ground_truth.json").exists()
    finally:
        cleanup(env)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_interrupted_mid_run_leaves_no_process_behind(broker, tmp_path, sig):
    env = demo_env(broker, tmp_path / "home")
    proc = subprocess.Popen([sys.executable, "-m", "yijian.cli", "demo", "--institutions", "12", "--encounters", "3000", "--replicas", "2"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            started |= descendants(proc.pid)
            workers = [p for p in started if alive(p) and b"worker" in Path(f"/proc/{p}/cmdline").read_bytes()]
            if len(workers) >= 2:
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the demo ended before it could be interrupted"
        assert len([p for p in started if alive(p)]) >= 2, "processor replicas did not start"
        time.sleep(3)  # mid-run: the hospitals are sending
        started |= descendants(proc.pid)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 130, out[-3000:]
        assert "interrupted" in out
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in started):
            time.sleep(0.2)
        assert [p for p in started if alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in started:
            if alive(p):
                os.kill(p, signal.SIGKILL)
        cleanup(env)
