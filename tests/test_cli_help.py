"""Every command and sub-command explains itself with --help."""

import typer
from typer.testing import CliRunner

from yijian.cli import app


def _walk(cmd, path: tuple[str, ...] = ()):
    yield path, cmd
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, path + (name,))


def test_every_command_has_help_text():
    root = typer.main.get_command(app)
    runner = CliRunner()
    paths = list(_walk(root))
    assert ("stack", ) in [p for p, _ in paths]
    for path, cmd in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
        if path:
            assert (cmd.help or "").strip(), f"`yijian {' '.join(path)}` has no help text"
