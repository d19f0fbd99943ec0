"""The `yijian` command line: one entry point for hospitals, ops, analysts and rule authors.

Each pipeline stage contributes its own sub-commands (in its folder's cli.py); heavy libraries are
imported inside commands so that `yijian --help` is instant and the SDK-only install works.
"""

from __future__ import annotations

import typer

from yijian.deploy.cli import app as stack_app
from yijian.producers.cli import check as check_command
from yijian.producers.cli import keys_app
from yijian.producers.cli import send as send_command

app = typer.Typer(
    name="yijian",
    help="yijian (医监): streaming platform for provincial medical supervision.\n\n"
    "Start here: `yijian demo` runs the whole platform locally; `yijian stack status` shows what runs. "
    "Settings come from YIJIAN_* environment variables (see README, 'Configuration').",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,  # locals may hold keys or patient data
)
app.add_typer(stack_app, name="stack")
app.add_typer(keys_app, name="keys")
app.command("send")(send_command)
app.command("check")(check_command)


@app.command()
def demo() -> None:
    """Run the main job locally: start the stack, push records through Kafka and ClickHouse, and
    print what happened and where the data lives."""
    from yijian.demo import run_demo

    run_demo()


@app.command()
def config() -> None:
    """Print the settings in force (secrets masked) and where each can be changed."""
    from rich.console import Console
    from rich.table import Table

    from yijian.config import Settings, get_settings

    settings = get_settings()
    table = Table("setting", "env var", "value", "what it is")
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        table.add_row(name, f"YIJIAN_{name.upper()}", str(value), field.description or "")
    Console().print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
