"""`python -m slime_model.training --data ...`: the train command for launchers that start a module
(`torchrun -m`, `deepspeed --module`); the same options as `slime-model train`."""

import typer

from slime_model.training.cli import train

typer.run(train)
