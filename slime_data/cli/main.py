"""`slime-data`: the data half of slime. Each command group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="slime-data",
    help="Build the SliME training data: ingest sources, build the sophisticated set, mix 2M.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines register(app) adding its commands.
from slime_data.cli import shards as _shards  # noqa: E402

for _module in (_shards,):
    _module.register(app)

if __name__ == "__main__":
    app()
