"""`slime-model`: the model half of slime. Each command group lives in its own module with ``register(app)``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="slime-model",
    help="The SliME model: train it stage by stage, answer with it, convert released checkpoints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """The SliME model: train it stage by stage, answer with it, convert released checkpoints.

    Examples:
      slime-model train --data manifests/mix.json
      slime-model generate --model runs/tiny/stage-3 --image chart.png --prompt "What is the largest value?"
      slime-model convert --from-official ~/ckpt/SliME-vicuna-7B --out models/slime-vicuna-7b
      slime-model serve --model runs/tiny/stage-3 --port 8000
      slime-model plan --recipe pipelines/train/slime-llama3-70b-lora.yaml --gpus 64
      slime-model ablate --quick
    """


# Modules each defining register(app).
COMMAND_MODULES = (
    "slime_model.cli.convert",
    "slime_model.cli.plan",
    "slime_model.training.cli",
    "slime_model.generate",
    "slime_model.serving.cli",
    "slime_model.cli.eval",
    "slime_model.cli.ablate",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)

if __name__ == "__main__":
    app()
