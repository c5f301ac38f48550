"""`slime-model generate`: answer one prompt about one image (or none) from a SliME checkpoint folder.

The checkpoint is any folder `save_pretrained` wrote with its processor: a trainer stage
(`runs/tiny/stage-3`) or a converted release (`slime-model convert`). Decoding is greedy, through
`slime_model.generation.generate_batch` (the path serve and evaluation share).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slime_data.ui import UserError, console, styled, user_errors

CHECKPOINT_HELP = "Checkpoint folder (a trainer stage such as runs/tiny/stage-3, or slime-model convert output)."
TEMPLATE_HELP = "Override the checkpoint's template (plain, vicuna_v1, llama3)."


def answer(
    model, processor, prompt: str, image=None, max_new_tokens: int = 128, chat_template: str | None = None
) -> tuple[str, int]:
    """The model's greedy answer to `prompt` about `image` (a PIL image or None), and its length in tokens."""
    from slime_model.generation import GenerationRequest, generate_batch
    from slime_model.processing import SliMEProcessor

    if chat_template is not None:
        settings = processor.settings.model_copy(update={"chat_template": chat_template})
        processor = SliMEProcessor(processor.tokenizer, settings)
    value = f"{processor.settings.image_token}\n{prompt}" if image is not None else prompt
    images = [image] if image is not None else []
    request = GenerationRequest([{"from": "human", "value": value}], images, max_new_tokens)
    (result,) = generate_batch(model, processor, [request])
    return result.text, result.completion_tokens


@user_errors
def generate(
    model: Annotated[Path, typer.Option("--model", help=CHECKPOINT_HELP)],
    prompt: Annotated[str, typer.Option("--prompt", help="The question.")],
    image: Annotated[Path | None, typer.Option("--image", help="Image file the question is about.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Longest answer in tokens.")] = 128,
    chat_template: Annotated[str | None, typer.Option("--chat-template", help=TEMPLATE_HELP)] = None,
) -> None:
    """Answer a prompt about an image from a SliME checkpoint (greedy decoding).

    Example: slime-model generate --model runs/tiny/stage-3 --image chart.png --prompt "What is the highest bar?"
    """
    from PIL import Image, UnidentifiedImageError
    from transformers.utils import logging as transformers_logging

    from slime_model.generation import load_checkpoint
    from slime_model.templates import CHAT_TEMPLATE_NAMES

    if not (model / "config.json").is_file():
        raise UserError(f"--model {model} is not a checkpoint folder (no config.json)")
    if chat_template is not None and chat_template not in CHAT_TEMPLATE_NAMES:
        raise UserError(f"--chat-template {chat_template!r} is not one of {', '.join(CHAT_TEMPLATE_NAMES)}")
    picture = None
    if image is not None:
        try:
            with Image.open(image) as opened:
                picture = opened.convert("RGB")
        except (OSError, UnidentifiedImageError) as err:
            raise UserError(f"--image {image}: {err}") from None
    transformers_logging.disable_progress_bar()
    clock = time.perf_counter()
    with console.status("loading the checkpoint and generating"):
        loaded, processor = load_checkpoint(model)
        text, tokens = answer(loaded, processor, prompt, picture, max_new_tokens, chat_template)
    print(text)
    if not text:
        console.print(
            styled(
                ("the answer is empty:", "yellow"),
                f" the model generated {tokens} token(s) that decode to no text (only end-of-sequence or special "
                "tokens, or whitespace); a briefly trained model, such as the tiny demo, often answers nothing",
            )
        )
    table = Table(show_header=False, title="slime-model generate")
    for name, value in [
        ("checkpoint", str(model)),
        ("image", f"{image} ({picture.width}x{picture.height})" if picture is not None else "none"),
        ("chat template", chat_template or processor.settings.chat_template),
        ("new tokens", str(tokens)),
        ("seconds", f"{time.perf_counter() - clock:.1f}"),
    ]:
        table.add_row(name, value)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
