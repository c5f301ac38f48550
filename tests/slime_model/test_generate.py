"""`slime-model generate` on a checkpoint folder: the answer on stdout, and a clear note when it is empty."""

from __future__ import annotations

import torch
from typer.testing import CliRunner

from slime_model.cli import app


def test_an_empty_answer_is_said_to_be_empty(model, processor, tmp_path):
    with torch.no_grad():
        model.get_output_embeddings().weight.zero_()  # every logit 0: greedy picks token 0, a special token
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    args = ["generate", "--model", str(tmp_path), "--prompt", "Colour?", "--max-new-tokens", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == "\n"  # the answer itself, empty
    assert "the answer is empty: the model generated 3 token(s) that decode to no text" in result.stderr
