"""`yijian keys ...`, `yijian send`, `yijian check`: the hospital SDK's commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from yijian.config import get_settings

console = Console()
err = Console(stderr=True)

keys_app = typer.Typer(
    help="Manage the per-institution SM4 keys (密钥管理): create, rotate, revoke, list, and export an "
    "institution's keys for its hospital. The key ring is the file YIJIAN_KEYRING_PATH, wrapped under "
    "YIJIAN_KEYRING_MASTER_KEY; key material is never printed.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

RECORD_TYPES = ("encounter", "prescription", "charge")


def _fail(zh: str, en: str, code: int = 1) -> None:
    err.print(f"[red]{zh}[/]\n{en}")
    raise typer.Exit(code)


def _ring():
    from yijian.keyring import load_keyring

    settings = get_settings()
    try:
        return settings, load_keyring(settings)
    except ValueError as exc:
        _fail("无法打开密钥环(主密钥错误或文件被改动)", f"cannot open the key ring {settings.keyring_path}: {exc}")


@keys_app.command("new")
def keys_new(institution: str = typer.Argument(..., help="Institution code, e.g. H52010100001.")) -> None:
    """Create the first key of an institution (or its next version; the previous active key is retired
    and still decrypts what was sent under it)."""
    import re

    from yijian.keyring import save_keyring
    from yijian.schemas.models import INSTITUTION_PATTERN

    if not re.match(INSTITUTION_PATTERN, institution):
        _fail(f"机构编码格式错误: {institution}(应为 H/P + 11 位数字)", f"bad institution code {institution!r} (H or P + 11 digits)")
    settings, ring = _ring()
    entry = ring.new(institution)
    save_keyring(settings, ring)
    console.print(f"[green]新密钥 / new key[/] {entry.key_id} (active); key ring: {settings.keyring_path}")


@keys_app.command("rotate")
def keys_rotate(institution: str = typer.Argument(..., help="Institution code.")) -> None:
    """Rotate: make a new active key version for the institution; older keys are retired (still decrypt).
    Export the ring again for the hospital afterwards (`yijian keys export`)."""
    from yijian.keyring import save_keyring

    settings, ring = _ring()
    if not ring.entries(institution):
        _fail(f"机构 {institution} 还没有密钥,请先 `yijian keys new`", f"institution {institution} has no key yet: run `yijian keys new` first")
    entry = ring.rotate(institution)
    save_keyring(settings, ring)
    console.print(f"[green]已轮换 / rotated[/]: active key is now {entry.key_id}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="Key id, e.g. H52010100001.v1."),
    publish: bool = typer.Option(True, help="Publish the revocation on the keys topic so running processors refuse the key at once."),
) -> None:
    """Revoke a key (compromised or abused): every envelope under it is refused from now on. The status
    event {key_id, status, revoked_at} (no key material) goes to the `keys` topic."""
    from yijian.keyring import UnknownKey, save_keyring
    from yijian.producers.keyadmin import publish_key_status

    settings, ring = _ring()
    try:
        entry = ring.revoke(key_id)
    except UnknownKey:
        _fail(f"未知的密钥标识 {key_id}", f"unknown key id {key_id}")
    save_keyring(settings, ring)
    console.print(f"[yellow]已吊销 / revoked[/] {key_id} at {entry.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
    if publish:
        try:
            publish_key_status(settings, entry)
        except Exception as exc:
            _fail("吊销已写入密钥环,但未能通知处理程序;请在 Kafka 可用后重试", f"revoked in the key ring but not published: {exc}", 2)
        console.print(f"published on {settings.topic('keys')}")
    if entry.status == "revoked" and not any(e.status == "active" for e in ring.entries(entry.institution_code)):
        console.print(f"[yellow]机构 {entry.institution_code} 已无有效密钥 / no active key left: run `yijian keys new {entry.institution_code}`[/]")


@keys_app.command("list")
def keys_list(institution: Optional[str] = typer.Argument(None, help="Only this institution.")) -> None:
    """List keys (id, status, created, revoked); never the material."""
    settings, ring = _ring()
    table = Table("key id", "institution", "version", "status", "created (UTC)", "revoked (UTC)")
    for e in ring.entries(institution):
        table.add_row(e.key_id, e.institution_code, str(e.version), e.status, f"{e.created:%Y-%m-%d %H:%M}", f"{e.revoked_at:%Y-%m-%d %H:%M}" if e.revoked_at else "")
    console.print(table)


@keys_app.command("export")
def keys_export(
    institution: str = typer.Argument(..., help="Institution code whose keys are exported."),
    out: Path = typer.Option(..., "--out", "-o", help="File to write (mode 0600), e.g. H52010100001.keyring.json."),
    master_key_file: Optional[Path] = typer.Option(
        None, help="File holding the hospital's master key (32 hex digits). Without it you are prompted (input hidden)."
    ),
) -> None:
    """Export one institution's keys for its hospital, wrapped (SM4-GCM) under a master key the
    hospital provides. The hospital sets YIJIAN_KEYRING_PATH to this file and
    YIJIAN_KEYRING_MASTER_KEY to its master key. Other institutions' keys are never included."""
    from yijian.producers.keyadmin import export_for_hospital

    settings, ring = _ring()
    text = master_key_file.read_text().strip() if master_key_file else typer.prompt("hospital master key (32 hex)", hide_input=True)
    try:
        master = bytes.fromhex(text)
        if len(master) != 16:
            raise ValueError
    except ValueError:
        _fail("主密钥应为 32 位十六进制数", "the master key must be 32 hex digits")
    try:
        n = export_for_hospital(ring, institution, out, master)
    except LookupError as exc:
        _fail(f"机构 {institution} 没有密钥", str(exc))
    console.print(f"[green]已导出 / exported[/] {n} key(s) of {institution} to {out}")


def send(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or JSONL file of records (see producers/README.md)."),
    record_type: str = typer.Option(..., "--type", "-t", help="encounter | prescription | charge"),
    institution: Optional[str] = typer.Option(None, help="Institution code (default YIJIAN_INSTITUTION_CODE)."),
    restart: bool = typer.Option(False, help="Ignore the saved position and send the file from its first row."),
    chunk: int = typer.Option(500, min=1, help="Rows stored per outbox transaction."),
    timeout: float = typer.Option(120.0, help="Seconds to wait for the broker's confirmations at the end."),
) -> None:
    """Backfill (存量数据): validate and publish the records of a CSV or JSONL file through the SDK.

    Resumable: the last row stored is remembered per file in the outbox database, so running the same
    command again continues where it stopped (use --restart to start over). Invalid rows are listed
    (row, field, reason in 中文 and English) and skipped; fix them and send them in a new file.
    Exit code 0 when everything was confirmed by the broker, 1 when rows were invalid, 2 when records
    are still waiting in the outbox (broker unreachable: they go out on the next run).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from yijian.producers import backfill as bf
    from yijian.producers.producer import HospitalProducer

    if record_type not in RECORD_TYPES:
        _fail(f"记录类型应为 {' / '.join(RECORD_TYPES)}", f"--type must be one of {', '.join(RECORD_TYPES)}")
    settings = get_settings()
    inst = institution or settings.institution_code
    if not inst:
        _fail("请用 --institution 或 YIJIAN_INSTITUTION_CODE 指定机构编码", "give the institution code with --institution or YIJIAN_INSTITUTION_CODE")
    try:
        bf.file_format(file)
        total = bf.count_rows(file)
    except (ValueError, UnicodeDecodeError) as exc:
        _fail("无法读取文件", str(exc))
    key = bf.file_key(file, record_type)
    try:
        producer = HospitalProducer(settings, inst, heartbeats=False)
    except LookupError as exc:
        _fail(f"机构 {inst} 没有可用密钥", str(exc))
    start = 0 if restart else producer.outbox.backfill_position(key)
    problems: list = []
    queued = 0
    with producer, Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task(f"{file.name} → {record_type}", total=total, completed=min(start, total))
        batch: list = []
        last = start

        def store() -> None:
            nonlocal batch, queued
            producer.send_many([r for _, r in batch], record_type, backfill=(key, last))
            queued += len(batch)
            batch = []

        rows = ((row, raw) for row, raw in bf.read_rows(file) if row > start)
        for row, rec, probs in bf.check_rows(rows, record_type, inst):
            if probs:
                problems.extend(probs)
            elif rec is not None:
                batch.append((row, rec))
            last = row
            if len(batch) >= chunk:
                store()
            progress.update(task, completed=row)
        if batch or last > start:
            store()
        progress.update(task, description=f"{file.name}: waiting for the broker")
        left = producer.flush(timeout)
    if problems:
        _print_problems(problems, 50)
    stats = f"rows {total}, skipped (already sent) {start}, queued {queued}, invalid {len({p.row for p in problems})}, still pending {left}"
    console.print(f"[bold]汇总 / summary[/]: {stats}")
    if left:
        err.print(f"[yellow]{left} 条记录仍在本地待发送队列中,将在下次运行时发送 / {left} records wait in the outbox and go out on the next run[/]")
        raise typer.Exit(2)
    if problems:
        raise typer.Exit(1)


def _print_problems(problems: list, limit: int) -> None:
    table = Table("row 行", "field 字段", "问题", "problem")
    for p in problems[:limit]:
        table.add_row(str(p.row), p.field, p.zh, p.en)
    console.print(table)
    if len(problems) > limit:
        console.print(f"... {len(problems) - limit} more / 另有 {len(problems) - limit} 个问题")


def check(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or JSONL file of records."),
    record_type: str = typer.Option(..., "--type", "-t", help="encounter | prescription | charge"),
    institution: Optional[str] = typer.Option(None, help="Expected institution code (default YIJIAN_INSTITUTION_CODE)."),
    limit: int = typer.Option(200, help="Most problems to print."),
    rules: bool = typer.Option(False, "--rules", help="Also run the platform's quality checks and rule packs on each valid record (事前审核)."),
    refdata: Optional[Path] = typer.Option(None, help="With --rules: folder of reference CSVs (code_maps.csv, institutions.csv, practitioners.csv, drugs.csv ...) so local codes map to national ones."),
) -> None:
    """Validate a CSV or JSONL file against the interface standard without sending anything.

    Lists every problem with row, field and reason (中文 and English): missing or malformed fields,
    values outside their domain, a wrong institution code, duplicate record ids, the primary diagnosis,
    the resident ID (GB 11643 check digit, birth date, sex digit) — the same reasons the platform gives.
    With --rules, each valid record also goes through the platform's quality checks and the rule packs
    shipped with this version (rules that need national codes stay silent for unmapped local codes
    unless --refdata gives your code maps). Exit code 0 when the file is clean, 1 otherwise.
    """
    from yijian.producers import backfill as bf

    if record_type not in RECORD_TYPES:
        _fail(f"记录类型应为 {' / '.join(RECORD_TYPES)}", f"--type must be one of {', '.join(RECORD_TYPES)}")
    try:
        res = bf.check_file(file, record_type, institution or get_settings().institution_code)
    except (ValueError, UnicodeDecodeError) as exc:
        _fail("无法读取文件", str(exc))
    if rules:
        res.problems.extend(_rule_problems(res.valid, record_type, refdata))
    if res.problems:
        _print_problems(res.problems, limit)
    bad_rows = len({p.row for p in res.problems})
    console.print(f"[bold]汇总 / summary[/]: rows {res.rows}, valid {res.rows - bad_rows}, rows with problems {bad_rows}, problems {len(res.problems)}")
    if res.problems:
        raise typer.Exit(1)


def _rule_problems(valid, record_type: str, refdata_dir: Optional[Path]) -> list:
    """Quality issues and rule findings the platform would raise, per valid row (事前)."""
    from yijian.keyring import KeyRing
    from yijian.processors.pipeline import Pipeline
    from yijian.processors.refdata_state import rule_context
    from yijian.producers.backfill import Problem
    from yijian.refdata.catalog import RefData
    from yijian.rules.engine import RuleEngine
    from yijian.rules.history import PatientHistory
    from yijian.rules.model import load_packs

    rd = RefData.from_csv_dir(refdata_dir) if refdata_dir else RefData()
    pipeline = Pipeline(get_settings(), KeyRing(), rd)
    engine = RuleEngine(load_packs(), rule_context(rd))
    histories: dict[str, PatientHistory] = {}
    problems = []
    for row, record in valid:
        out = pipeline.standardize_one(record_type, record)
        for q in out.quality:
            if q.code == "unmapped_code" and refdata_dir is None:
                continue  # without code maps every local code is unmapped: not news to the hospital
            zh, _, en = q.message.partition(" / ")
            problems.append(Problem(row, q.field, q.code, zh, en or zh))
        for std in out.std:
            history = histories.setdefault(std["patient"]["pseudonym"], PatientHistory(std["patient"]["pseudonym"], max_days=engine.history_days or 31))
            for f in engine.process(std, history):
                problems.append(Problem(row, f.rule_id, f"rule:{f.rule_id}", f"[{f.severity}/{f.result_type}] {f.message}", f"{f.rule_name} (rule {f.rule_id} v{f.rule_version}; {f.basis})"))
    return problems


def simulate(
    institutions: int = typer.Option(200, help="Hospitals, spread over the province's prefectures and counties."),
    encounters: int = typer.Option(3000, help="Encounters to simulate (≈6 records each: prescriptions, charges)."),
    seed: int = typer.Option(1, help="Same seed, same province."),
    hours: float = typer.Option(12.0, help="Business hours covered, ending now."),
    fault_rate: float = typer.Option(None, help="Rate of each injected fault per encounter (default: the simulator's)."),
    rate: float = typer.Option(None, help="Records per second to send at (default: as fast as possible)."),
    ground_truth: str = typer.Option(None, help="Where to write what was injected (default <home>/simulation/ground_truth.json)."),
    publish: bool = typer.Option(True, help="Send to Kafka; --no-publish only writes the ground truth."),
) -> None:
    """Simulate a province's hospitals and send their traffic through the SDK's envelope and keys.

    Creates keys for the simulated institutions (platform key ring), publishes their reference data
    (registries, code maps with deliberate gaps) to the refdata topic, then sends encounters,
    prescriptions and charges with injected faults (invalid fields, late records, sequence gaps,
    unmapped codes, corrections, rule violations) and a heartbeat and daily manifest per institution.
    The ground truth of every injected fault is written to a JSON file for checking the platform.
    """
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from yijian.config import get_settings
    from yijian.keyring import load_keyring, save_keyring
    from yijian.producers.sim_publisher import publish_simulation
    from yijian.producers.simulator import simulate as run_simulation

    settings = get_settings()
    res = run_simulation(institutions=institutions, encounters=encounters, seed=seed, hours=hours, fault_rate=fault_rate)
    path = Path(ground_truth) if ground_truth else settings.home / "simulation" / "ground_truth.json"
    res.write_ground_truth(path)
    totals = res.ground_truth["totals"]
    console.print(f"simulated {totals['institutions']} institutions, {totals['events']} records "
                  f"({sum(totals['faulty_records'].values())} with injected faults) in {res.seconds:.1f} s → ground truth {path}")
    if not publish:
        return
    from yijian.processors.refdata_state import publish as publish_refdata

    ring = load_keyring(settings)
    for inst in res.by_institution:
        if not ring.entries(inst):
            ring.new(inst)
    save_keyring(settings, ring)
    publish_refdata(settings, res.refdata_updates())
    with Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("send", total=sum(totals["sent"].values()))
        report = publish_simulation(settings, res, ring, rate=rate, progress=lambda n: bar.update(task, completed=n))
    console.print(f"sent {report.records_sent} records in {report.envelopes} envelopes "
                  f"(+{report.control_envelopes} heartbeats/manifests), {report.records_skipped} numbered but withheld (gaps), "
                  f"{report.records_sent / max(report.seconds, 1e-6):,.0f} records/s")
