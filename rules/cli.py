"""`yijian rules ...`: lint, test, explain and list the rule knowledge base (规则知识库)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="Rule knowledge base (监管规则知识库): check, test, explain and list rule packs.\n\n"
    "Rules are data in rules/packs/*.yaml; logic templates are Python (rules/templates/). "
    "See rules/README.md for how to add a rule or a template.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

PacksOpt = typer.Option(None, "--packs", help="Folder of rule packs (default: the packs shipped in yijian.rules).")


def _folder(packs: Path | None) -> Path:
    from yijian.rules.model import PACKS_DIR

    return packs or PACKS_DIR


def _engine(folder: Path):
    from yijian.rules.engine import RuleEngine
    from yijian.rules.model import load_fixture, load_packs

    ctx, bases = load_fixture(folder if (folder / "_context.yaml").exists() else _folder(None))
    return RuleEngine(load_packs(folder), ctx), bases


@app.command()
def lint(packs: Path | None = PacksOpt) -> None:
    """Check every pack: YAML and schema, duplicate rule ids, unknown templates, bad params (national
    code formats: 医保西药 X-codes, 中成药 Z-codes, 饮片 T-codes, service items 00…, consumables C…,
    ICD-10, ICD-9-CM-3), unsafe expressions, and that every rule has must-fire and must-pass cases.
    Exit code 1 if anything is wrong."""
    from rich.console import Console
    from rich.table import Table

    from yijian.rules.lint import lint_folder

    problems = lint_folder(_folder(packs))
    console = Console()
    if not problems:
        console.print("[green]规则包检查通过 / all packs are valid[/green]")
        return
    table = Table("pack", "rule", "problem", title=f"{len(problems)} 个问题 / problems")
    for p in problems:
        table.add_row(Path(p.source).name, p.rule, p.message)
    console.print(table)
    raise typer.Exit(1)


@app.command()
def test(packs: Path | None = PacksOpt, rule: list[str] = typer.Option(None, "--rule", "-r", help="Only these rule ids."),
         verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every case, not only failures.")) -> None:
    """Run every rule's test cases through the engine (must-fire and must-not-fire records built from
    the base records in _context.yaml). Prints a table; exit code 1 if any case fails."""
    from collections import defaultdict

    from rich.console import Console
    from rich.table import Table

    from yijian.rules.cases import run_all

    engine, bases = _engine(_folder(packs))
    results = run_all(engine, bases, set(rule) if rule else None)
    console = Console()
    per_rule = defaultdict(list)
    for r in results:
        per_rule[r.rule_id].append(r)
    table = Table("rule", "ver", "pack", "fire", "pass", "result", title="规则用例 / rule test cases")
    for rid, rs in per_rule.items():
        ok = all(r.ok for r in rs)
        fire = sum(1 for r in rs if r.expect == "fire")
        if verbose or not ok:
            table.add_row(rid, str(rs[0].rule_version), rs[0].pack, str(fire), str(len(rs) - fire),
                          "[green]ok[/green]" if ok else "[red]FAIL[/red]: " + "; ".join(
                              f"{r.expect}#{r.index} {r.detail}" for r in rs if not r.ok))
    failed = [r for r in results if not r.ok]
    if verbose or failed:
        console.print(table)
    console.print(f"{len(per_rule)} rules, {len(results)} cases, "
                  + (f"[red]{len(failed)} failed[/red]" if failed else "[green]all passed[/green]"))
    if failed:
        raise typer.Exit(1)


@app.command()
def explain(rule_id: str = typer.Argument(..., help="Rule id, e.g. NH-A01."),
            record: Path = typer.Argument(..., help="A standardized record as JSON (processors/contracts.py shape)."),
            history: Path | None = typer.Option(None, "--history", help="JSON list of earlier standardized records of the same patient."),
            packs: Path | None = PacksOpt) -> None:
    """Evaluate ONE rule on ONE standardized record and show each condition it checked (✓/✗) and
    the finding it would produce."""
    from rich.console import Console

    from yijian.rules.engine import RuleError
    from yijian.rules.history import PatientHistory

    engine, _ = _engine(_folder(packs))
    rec = json.loads(record.read_text(encoding="utf-8"))
    hist = None
    if history is not None:
        hist = PatientHistory(max_days=max(engine.history_days, 30))
        for r in json.loads(history.read_text(encoding="utf-8")):
            hist.observe(r)
    console = Console()
    try:
        out = engine.explain(rule_id, rec, hist)
    except RuleError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    cr = engine.rules[rule_id]
    console.print(f"[bold]{rule_id}[/bold] v{cr.rule.version} {cr.rule.name}  (template {cr.rule.template}, pack {cr.pack.id}@{cr.pack.version})")
    for cond, ok in out["steps"]:
        console.print(f"  {'[green]✓[/green]' if ok else '[red]✗[/red]'} {cond}", markup=True, highlight=False)
    f = out["finding"]
    if f is None:
        console.print("结果 / result: 未触发 / not fired")
    else:
        console.print(f"结果 / result: [bold red]触发 / fired[/bold red] {f.severity} {f.result_type} 金额 {f.vola_amt}")
        console.print(f"  {f.message}")
        console.print(f"  依据 / basis: {f.basis}")


@app.command("list")
def list_rules(packs: Path | None = PacksOpt, category: str | None = typer.Option(None, help="Only 政策 / 管理 / 医疗.")) -> None:
    """List the packs on disk and their rules (id, version, category, template, name), with counts
    per category."""
    from collections import Counter

    from rich.console import Console
    from rich.table import Table

    from yijian.rules.model import load_packs

    console = Console()
    counts: Counter[str] = Counter()
    for pack in load_packs(_folder(packs)):
        table = Table("id", "ver", "category", "severity", "template", "name", title=f"{pack.id}@{pack.version} {pack.name}")
        for r in pack.rules:
            if category and r.category != category:
                continue
            counts[r.category] += 1
            table.add_row(r.id, str(r.version), r.category, r.severity, r.template, r.name)
        console.print(table)
    console.print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + f"  total: {sum(counts.values())}")


@app.command()
def templates() -> None:
    """List the logic templates (built-in and from plugins, entry-point group yijian.rule_templates)."""
    from rich.console import Console
    from rich.table import Table

    from yijian.rules.templates import registry

    table = Table("template", "record types", "trigger", "stateful", "what it checks")
    for name, t in sorted(registry().items()):
        table.add_row(name, ",".join(t.record_types), t.trigger or "-", "yes" if t.stateful else "", t.description)
    Console().print(table)


@app.command()
def deploy(pack_file: Path = typer.Argument(..., exists=True, dir_okay=True, help="A pack YAML file, or a folder of packs (all deployed).")) -> None:
    """Put a rule pack in force on every running processor, without restart.

    Lints and tests the pack first (nothing is deployed if a case fails), then publishes it to the
    compacted `rules` topic. Every replica switches within seconds; findings name the pack version in
    force. Undo with `yijian rules rollback PACK_ID`.
    """
    from rich.console import Console

    import yaml

    from yijian.config import get_settings
    from yijian.rules.cases import run_all
    from yijian.rules.deployment import publish
    from yijian.rules.engine import RuleEngine
    from yijian.rules.lint import lint_pack_data
    from yijian.rules.model import PACKS_DIR, load_fixture, load_pack, pack_files

    console = Console()
    files = pack_files(pack_file) if pack_file.is_dir() else [pack_file]
    problems = lint_pack_data([(str(f), yaml.safe_load(f.read_text(encoding="utf-8"))) for f in files])
    if problems:
        for p in problems:
            console.print(f"[red]✗[/] {p.source} {p.rule}: {p.message}")
        raise typer.Exit(1)
    packs = [load_pack(f) for f in files]
    ctx, bases = load_fixture(PACKS_DIR)
    failed = [r for r in run_all(RuleEngine(packs, ctx), bases) if not r.ok]
    if failed:
        for r in failed:
            console.print(f"[red]✗[/] {r.rule_id} {r.expect}#{r.index}: {r.detail}")
        console.print("[red]部署已取消 / not deployed: test cases fail[/]")
        raise typer.Exit(1)
    settings = get_settings()
    for pack in packs:
        publish(settings, pack)
        console.print(f"[green]deployed[/] {pack.id} {pack.version} ({len(pack.rules)} rules) → {settings.topic('rules')}")


@app.command()
def rollback(
    pack_id: str = typer.Argument(..., help="Pack id, e.g. nhsa_2025."),
    to: str | None = typer.Option(None, "--to", help="Version to restore (default: the previous deployed version)."),
) -> None:
    """Restore an earlier deployed version of a pack (from the rules topic's archive)."""
    from yijian.config import get_settings
    from yijian.rules.deployment import rollback as do_rollback

    try:
        pack = do_rollback(get_settings(), pack_id, to)
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1)
    typer.echo(f"rolled back {pack_id} to version {pack.version}")


@app.command()
def undeploy(pack_id: str = typer.Argument(..., help="Pack id to take out of force.")) -> None:
    """Take a pack out of force on every processor (its versions stay in the archive for rollback)."""
    from yijian.config import get_settings
    from yijian.rules.deployment import undeploy as do_undeploy

    do_undeploy(get_settings(), pack_id)
    typer.echo(f"undeployed {pack_id}")


@app.command()
def deployed() -> None:
    """What is in force on the platform now (read from the rules topic), and the versions available for rollback."""
    from rich.console import Console
    from rich.table import Table

    from yijian.config import get_settings
    from yijian.rules.deployment import _vkey, read_deployed

    state = read_deployed(get_settings())
    table = Table("pack", "in force", "rules", "archived versions")
    for pack_id in sorted(set(state.in_force) | set(state.archive)):
        pack = state.in_force.get(pack_id)
        table.add_row(pack_id, str(pack.version) if pack else "—", str(len(pack.rules)) if pack else "", ", ".join(sorted(state.archive.get(pack_id, {}), key=_vkey)))
    Console().print(table)
