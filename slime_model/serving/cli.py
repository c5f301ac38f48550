"""`slime-model serve`: load a checkpoint and answer OpenAI chat-completions requests over HTTP."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slime_data.ui import UserError, console, user_errors
from slime_model.serving.settings import API_KEY_ENV


@user_errors
def serve(
    model: Annotated[Path, typer.Option("--model", help="Checkpoint folder (a trainer stage, or convert output).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Requests run together as one batch.")] = 8,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0, help="Longest a request waits for others to join its batch.")
    ] = 20.0,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", help=f"Require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}; unset: no key)."
        ),
    ] = None,
    allow_image_dir: Annotated[
        Path | None, typer.Option("--allow-image-dir", help="Serve local image files (file://) below this folder.")
    ] = None,
    allow_remote_images: Annotated[
        bool,
        typer.Option("--allow-remote-images", help="Fetch http(s) image URLs (off: server-side request forgery risk)."),
    ] = False,
    max_images: Annotated[int, typer.Option("--max-images", min=0, help="Images per request.")] = 4,
    served_model_name: Annotated[
        str | None, typer.Option("--served-model-name", help="Model id clients send (default: the folder's name).")
    ] = None,
    shutdown_timeout: Annotated[
        float, typer.Option("--shutdown-timeout", min=0, help="Seconds in-flight requests get after SIGTERM.")
    ] = 30.0,
) -> None:
    """Serve a SliME checkpoint as an OpenAI-compatible chat endpoint with dynamic batching.

    Clients (the openai package, lmms-eval, VLMEvalKit, slime-data teach) use base URL http://HOST:PORT/v1
    and the model id shown at start. Images come as data: URLs; local files only below --allow-image-dir.

    Example: slime-model serve --model runs/tiny/stage-3 --port 8000 --max-batch 16
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as missing:
        raise UserError(f"slime-model serve needs {missing.name}: pip install 'slime[serve]'") from None
    from transformers.utils import logging as transformers_logging

    from slime_model.generation import load_checkpoint
    from slime_model.serving.app import create_app
    from slime_model.serving.settings import ServeSettings

    if not (model / "config.json").is_file():
        raise UserError(f"--model {model} is not a checkpoint folder (no config.json)")
    if allow_image_dir is not None and not allow_image_dir.is_dir():
        raise UserError(f"--allow-image-dir {allow_image_dir} is not a folder")
    key = api_key or os.environ.get(API_KEY_ENV) or None
    settings = ServeSettings(
        model_name=served_model_name or model.resolve().name,
        api_key=key,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        allow_image_dir=allow_image_dir,
        allow_remote_images=allow_remote_images,
        max_images=max_images,
        shutdown_timeout_s=shutdown_timeout,
    )
    transformers_logging.disable_progress_bar()
    with console.status("loading the checkpoint"):
        loaded, processor = load_checkpoint(model)
    app = create_app(loaded, processor, settings)
    console.print(
        f"serving [bold]{settings.model_name}[/] at http://{host}:{port}/v1 on {loaded.device} "
        f"(batches of up to {max_batch}, {max_wait_ms:g} ms wait; API key {'required' if key else 'not required'})"
    )
    clock = time.perf_counter()
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=int(shutdown_timeout + 0.999)
    )
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with these handlers
    # that ends here, so the summary prints and SIGTERM exits 0 (a clean, finished shutdown).
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in signals}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats = app.state.queue.stats.as_dict()
    table = Table(show_header=False, title="slime-model serve")
    for name, value in [
        ("model", settings.model_name),
        ("requests answered", str(stats["requests"])),
        ("batches", str(stats["batches"])),
        ("mean batch size", f"{stats['mean_batch']:.2f}"),
        ("largest batch", str(stats["largest_batch"])),
        ("minutes up", f"{(time.perf_counter() - clock) / 60:.1f}"),
    ]:
        table.add_row(name, value)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
