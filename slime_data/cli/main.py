"""`slime-data`: the data half of slime. Each command group lives in its own module with ``register(app)``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="slime-data",
    help="Build the SliME training data: ingest sources, build the sophisticated set, mix 2M.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules under slime_data.cli, each defining register(app).
COMMAND_MODULES = (
    "build",
    "ingest",
    "mix",
    "shards",
    "synth",
    "teach",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"slime_data.cli.{_name}").register(app)

if __name__ == "__main__":
    app()
