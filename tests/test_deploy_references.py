"""What the deployment files and the ops docs refer to must exist: `yijian` commands and YIJIAN_*
settings. Strict on purpose: a manifest or runbook step that names a command or a setting the code
does not have fails here, not at 3 a.m. in production."""

from __future__ import annotations

import re
from pathlib import Path

import typer
import yaml

from yijian.cli import app
from yijian.config import Settings

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
DOCS = [REPO / "docs" / "runbook.md", REPO / "docs" / "configuration.md"]
IMAGE = "yijian:0.1.0"

# Every `yijian` command that deploy/ and docs/ refer to, in ONE place. Each must exist in the CLI.
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("worker",),
    ("sink",),
    ("dashboard",),
    ("db", "migrate"),
    ("rules", "deploy"),
    ("rules", "list"),
    ("rules", "deployed"),
    ("rules", "rollback"),
    ("rules", "undeploy"),
    ("rules", "lint"),
    ("rules", "test"),
    ("keys", "new"),
    ("keys", "rotate"),
    ("keys", "revoke"),
    ("keys", "list"),
    ("replay",),
    ("send",),
    ("check",),
    ("config",),
    ("stack", "up"),
    ("stack", "status"),
    ("stack", "check"),
    ("stack", "down"),
)

_WORD = r"[a-z][a-z-]*"


def _deployment_files() -> list[Path]:
    files = [p for p in (DEPLOY / "compose").rglob("*") if p.is_file() and p.suffix != ".json"]
    files += [p for p in (DEPLOY / "k8s").rglob("*") if p.is_file() and p.suffix != ".json"]
    files += [DEPLOY / "Dockerfile", DEPLOY / "docker-entrypoint.sh", DEPLOY / "README.md"]
    return [p for p in files if "secrets" not in p.parts]


def referenced_commands() -> set[tuple[str, ...]]:
    """Word sequences after `yijian` in code spans/blocks of the docs and manifests, plus the
    container arguments of every yijian container (compose `command`, Kubernetes `args`)."""
    found: set[tuple[str, ...]] = set()
    texts = [p.read_text(encoding="utf-8") for p in DOCS + _deployment_files() + [DEPLOY / "capacity.py"]]
    for text in texts:
        code = re.findall(r"```.*?\n(.*?)```", text, flags=re.S)
        code += re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        for chunk in code:
            # not the namespace in `kubectl -n yijian ...` / `--namespace yijian`
            for m in re.finditer(rf"(?<![\w./=-])(?<!-n )(?<!namespace )yijian((?: {_WORD}){{1,2}})", chunk):
                found.add(tuple(m.group(1).split()))
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text(encoding="utf-8"))
    for svc in compose["services"].values():
        if svc.get("image") == IMAGE and svc.get("command"):
            found.add(tuple(w for w in svc["command"] if re.fullmatch(_WORD, w)))
    for path in (DEPLOY / "k8s").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            for c in _containers(doc or {}):
                if c.get("image") == IMAGE and c.get("args"):
                    found.add(tuple(w for w in c["args"] if re.fullmatch(_WORD, w)))
    return found


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def test_every_referenced_command_is_listed():
    refs = referenced_commands()
    assert ("worker",) in refs and ("db", "migrate") in refs  # the scan finds things
    # `yijian rules deploy PACK` -> ("rules", "deploy"); `yijian keys ...` -> the group ("keys",)
    unlisted = sorted(r for r in refs if not any(r[: len(c)] == c or c[: len(r)] == r for c in COMMANDS))
    assert not unlisted, f"add these to COMMANDS (and make sure they exist): {unlisted}"


def test_every_listed_command_exists_in_the_cli():
    root = typer.main.get_command(app)
    missing = []
    for path in COMMANDS:
        node = root
        for word in path:
            subs = getattr(node, "commands", None)
            if subs is None or word not in subs:
                missing.append("yijian " + " ".join(path))
                break
            node = subs[word]
    assert not missing, f"commands referenced by deploy/ and docs/ but absent from the CLI: {missing}"


def referenced_settings() -> dict[str, set[str]]:
    """YIJIAN_* names in compose, Kubernetes, the image and the runbook. NAME_FILE means NAME read
    from a file (deploy/docker-entrypoint.sh)."""
    out: dict[str, set[str]] = {}
    for path in _deployment_files() + [DOCS[0]]:
        for name in re.findall(r"\bYIJIAN_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8")):
            name = name.removesuffix("_FILE")
            out.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return out


def test_environment_variables_in_manifests_are_settings():
    refs = referenced_settings()
    assert "YIJIAN_KAFKA_BOOTSTRAP" in refs and "YIJIAN_CLICKHOUSE_DSN" in refs
    known = {f"YIJIAN_{name.upper()}" for name in Settings.model_fields}
    unknown = {name: sorted(files) for name, files in refs.items() if name not in known}
    assert not unknown, f"YIJIAN_* variables that yijian.config.Settings does not define: {unknown}"


def test_every_setting_is_documented():
    doc = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [f"YIJIAN_{n.upper()}" for n in Settings.model_fields if f"`YIJIAN_{n.upper()}`" not in doc]
    assert not missing, f"docs/configuration.md does not document: {missing}"
