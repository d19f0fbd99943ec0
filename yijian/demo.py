"""`make demo` / `yijian demo`: the whole platform on one machine, from a fresh clone.

local Kafka + embedded ClickHouse → a simulated province of hospitals (SDK envelopes, injected
faults) → processor replicas (decrypt, standardize, quality, rules) → ClickHouse sink → a province
summary compared with what the simulator injected, and where everything is.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from yijian.config import Settings, get_settings


class Demo:
    def __init__(self, settings: Settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.stop = threading.Event()
        self.workers: list = []
        self.supervisor = None
        self.sink = None
        self.sink_thread: threading.Thread | None = None
        self.sink_server = None

    # --- steps ------------------------------------------------------------------------------------
    def start_stack(self) -> None:
        import shutil

        from yijian.deploy import stack

        with self.console.status("starting the local stack (the first run downloads Kafka, ≈46 MB) ..."):
            stack.up(self.settings, create_topics=False)
            removed = stack.reset(self.settings)  # each demo starts from an empty local stack
            shutil.rmtree(self.settings.home / "simulation", ignore_errors=True)
            created = stack.up(self.settings)
        if removed:
            self.console.print(f"[dim]cleared the previous demo's data ({removed} topics, ClickHouse database {self.settings.clickhouse_database})[/]")
        self.console.print(f"[green]✓[/] Kafka on {self.settings.kafka_bootstrap} ({len(created)} topics), "
                           f"ClickHouse {self.settings.clickhouse_dsn}")

    def start_sink(self) -> None:
        from yijian.sinks.cli import _serve_sink
        from yijian.sinks.sink import ClickHouseSink

        self.sink = ClickHouseSink(self.settings)  # applies the ClickHouse migrations first
        self.sink_server = _serve_sink(self.settings, self.sink)
        self.sink_thread = threading.Thread(target=self.sink.run, args=(self.stop,), name="sink", daemon=True)
        self.sink_thread.start()
        self.console.print(f"[green]✓[/] ClickHouse sink running (group {self.settings.sink_group_id}; "
                           f"query endpoint http://{self.settings.sink_http_host}:{self.settings.sink_http_port}/query)")

    def start_workers(self, replicas: int) -> None:
        from yijian.deploy.local import Worker

        for i in range(replicas):
            # compressed time for the demo: reconcile manifests and check connections within seconds
            self.workers.append(Worker(self.settings, name=f"w{i + 1}", YIJIAN_CONTROL_INTERVAL_S="2", YIJIAN_MANIFEST_GRACE_S="4",
                                       YIJIAN_STALL_AFTER_S="20"))
        from yijian.deploy.local import wait_assigned

        with self.console.status(f"starting {replicas} processor replicas ..."):
            shares = wait_assigned(self.workers)
        from yijian.deploy.local import Supervisor

        self.supervisor = Supervisor(self.workers, on_restart=lambda w: self.console.print(
            f"[yellow]replica {w.log_path.stem} reported a stalled partition: restarted (as a liveness probe would)[/]")).start()
        logs = ", ".join(str(w.log_path) for w in self.workers)
        self.console.print(f"[green]✓[/] {replicas} processor replicas share the partitions ({shares}); logs: {logs}")

    def deploy_rules(self) -> int:
        from yijian.rules.deployment import publish
        from yijian.rules.model import load_packs

        packs = load_packs()
        for pack in packs:
            publish(self.settings, pack)
        n = sum(len(p.rules) for p in packs)
        self.console.print(f"[green]✓[/] {len(packs)} rule packs deployed ({n} rules) on the rules topic")
        return n

    def wait_until_drained(self, timeout: float = 600) -> None:
        """Until the processors and the sink have consumed everything (lag 0 twice in a row)."""
        from yijian.deploy.local import wait_until_drained

        with self.console.status("processing ...") as status:
            wait_until_drained(self.settings, timeout, on_status=lambda lag_p, lag_s: status.update(
                f"processing ... processors' lag {lag_p} envelopes, sink's lag {lag_s} batches"))

    def shutdown(self) -> None:
        self.stop.set()
        if self.supervisor:
            self.supervisor.stop()
        for w in self.workers:
            w.stop()
        if self.sink_thread:
            self.sink_thread.join(30)
        if self.sink_server:
            self.sink_server.stop()


def _summary(console: Console, settings: Settings, ground_truth: dict, report, elapsed: float, withheld_days: int = 0) -> None:
    from yijian.sinks.client import make_client
    from yijian.sinks.queries import ClientBackend, province_summary

    be = ClientBackend(make_client(settings))
    summary = province_summary(be, settings)
    table = Table("", "value", title="province summary (ClickHouse, latest versions)", show_header=False)
    table.add_row("institutions", str(summary["institutions"]))
    for t, n in summary["records"].items():
        table.add_row(f"{t} records", f"{n:,}")
    table.add_row("quality score (0–100)", f"{summary['quality_score']:.1f}")
    for k, v in summary["quality"].items():
        table.add_row(f"  {k}", f"{100 * v:.1f} %")
    for sev, n in summary["findings_by_severity"].items():
        table.add_row(f"findings {sev}", f"{n:,}")
    for st, n in summary["connection_status"].items():
        table.add_row(f"connection {st}", str(n))
    console.print(table)

    injected = Counter()
    for f in ground_truth["faults"]:
        for e in f["expect"]:
            if e["kind"] == "quality":
                injected[e["code"]] += 1
            elif e["kind"] == "seq_gap" and not e.get("trailing"):
                injected["seq_gap"] += 0  # gaps are counted per range below
    injected["seq_gap"] = sum(1 for g in ground_truth["seq_gaps"] if not g["trailing"])
    if withheld_days:  # a daily manifest declares what was generated: each day with withheld records mismatches
        injected["manifest_mismatch"] = withheld_days
    found = dict(be.sql("SELECT code, uniqExact(institution_code, record_type, record_id, version) FROM quality_issues FINAL GROUP BY code").rows)
    cmp = Table("quality issue", "records injected by the simulator", "records found by the platform", title="ground truth vs platform")
    for code in sorted(set(injected) | set(found)):
        cmp.add_row(code, str(injected.get(code, "–")), str(found.get(code, 0)))
    rules = Counter(e["subject"] for f in ground_truth["faults"] for e in f["expect"] if e["kind"] == "rule")
    console.print(cmp)
    by_rule = be.sql("SELECT rule_id, any(rule_name), count() FROM findings FINAL GROUP BY rule_id ORDER BY count() DESC LIMIT 12").rows
    rt = Table("rule", "name", "findings", title=f"rule findings (injected violations: {sum(rules.values())} over {len(rules)} subjects)")
    for rid, name, n in by_rule:
        rt.add_row(rid, name, str(n))
    console.print(rt)
    rejected = be.sql("SELECT reason, count() FROM rejected FINAL GROUP BY reason").rows
    console.print(f"rejected envelopes: {dict(rejected) or 'none'}")
    console.print(Panel.fit(
        f"Sent {report.records_sent:,} records ({report.records_skipped} withheld to simulate gaps) from "
        f"{ground_truth['totals']['institutions']} institutions; end to end in {elapsed:.0f} s.\n\n"
        f"Data:        Kafka {settings.kafka_bootstrap} (data {settings.home / 'data' / 'kafka'})\n"
        f"             ClickHouse {settings.clickhouse_dsn}, database {settings.clickhouse_database}\n"
        f"Ground truth {settings.home / 'simulation' / 'ground_truth.json'}\n\n"
        "Query:       .venv/bin/yijian query \"SELECT city_code, count() FROM encounters FINAL GROUP BY city_code\"\n"
        "             .venv/bin/yijian query --list   ·   .venv/bin/yijian query -n quality_score -p level=county\n"
        f"Dashboard:   .venv/bin/yijian dashboard   → http://{settings.sink_http_host}:{settings.dashboard_port}/\n"
        "Stack:       .venv/bin/yijian stack status   ·   .venv/bin/yijian stack down",
        title="yijian demo: done",
    ))


def run_demo(institutions: int = 200, encounters: int = 3000, replicas: int = 2, serve: bool = False) -> None:
    from yijian.keyring import load_keyring, save_keyring
    from yijian.processors.refdata_state import publish as publish_refdata
    from yijian.producers.sim_publisher import publish_simulation
    from yijian.producers.simulator import simulate

    console = Console()
    settings = get_settings()
    demo = Demo(settings, console)
    interrupted = threading.Event()

    def on_signal(*_):
        interrupted.set()
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_signal)
    t0 = time.monotonic()
    try:
        demo.start_stack()
        res = simulate(institutions=institutions, encounters=encounters, seed=int(time.time()) % 100000)
        res.write_ground_truth(settings.home / "simulation" / "ground_truth.json")
        totals = res.ground_truth["totals"]
        console.print(f"[green]✓[/] simulated {totals['institutions']} hospitals across the province: {sum(totals['sent'].values()):,} records to send, "
                      f"{sum(totals['faulty_records'].values()):,} with injected faults ({res.seconds:.1f} s)")
        ring = load_keyring(settings)
        for inst in res.by_institution:
            if not ring.entries(inst):
                ring.new(inst)
        save_keyring(settings, ring)
        console.print(f"[green]✓[/] SM4 keys for {len(res.by_institution)} institutions in {settings.keyring_path} (wrapped at rest)")
        n_updates = publish_refdata(settings, res.refdata_updates())
        console.print(f"[green]✓[/] reference data published ({n_updates} updates: registries, code maps, catalogues)")
        demo.deploy_rules()
        demo.start_sink()
        demo.start_workers(replicas)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("hospitals sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("send", total=sum(totals["sent"].values()))
            report = publish_simulation(settings, res, ring, progress=lambda n: bar.update(task, completed=n))
        console.print(f"[green]✓[/] sent {report.records_sent:,} records in {report.envelopes:,} SM4-GCM envelopes "
                      f"(+{report.control_envelopes} heartbeats and daily manifests)")
        demo.wait_until_drained()
        time.sleep(8)  # manifests are reconciled 4 s after they arrive, at the next 2 s tick
        demo.wait_until_drained()
        from yijian.schemas.models import business_date

        withheld_days = len({(ev.institution_code, ev.record_type, business_date(ev.record_type, ev.record)) for ev in res.iter_timed() if ev.skip})
        _summary(console, settings, res.ground_truth, report, time.monotonic() - t0, withheld_days)
        if serve:
            console.print(f"serving the dashboard on http://{settings.sink_http_host}:{settings.dashboard_port}/ — Ctrl-C to stop")
            from yijian.sinks.assets import ensure_assets
            from yijian.sinks.client import make_client
            from yijian.sinks.queries import ClientBackend
            from yijian.sinks.server import App, Server

            server = Server(App(backend=ClientBackend(make_client(settings)), dashboard=True, settings=settings, assets=ensure_assets()),
                            settings.sink_http_host, settings.dashboard_port).start()
            try:
                while True:
                    time.sleep(1)
            finally:
                server.stop()
    except KeyboardInterrupt:
        interrupted.set()
        console.print("[yellow]interrupted: stopping processors and sink ...[/]")
    finally:
        demo.shutdown()
        signal.signal(signal.SIGTERM, old)
    if interrupted.is_set():
        raise SystemExit(130)


__all__ = ["run_demo"]
