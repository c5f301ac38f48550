"""The session's tiny mix inputs (see mixdata.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slime_data.record import Record
from tests.slime_data.mix.mixdata import make_records, write_input


@pytest.fixture(scope="session")
def mix_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """captions: 60 rows; qa_a: 50 rows; qa_b: 30 rows (2 of them exact copies of qa_a rows)."""
    root = tmp_path_factory.mktemp("mix-inputs")
    qa_a = make_records("qa_a", 50, seed=2, task="chart")
    qa_b = make_records("qa_b", 30, seed=3, task="science")
    for k in (0, 1):  # the same image and question under another source: a cross-source exact duplicate
        qa_b[k] = Record(**{**qa_a[k].__dict__, "id": f"qa_b/copy{k}", "source": "qa_b"})
    return {
        "captions": write_input(root / "captions", make_records("captions", 60, seed=1)),
        "qa_a": write_input(root / "qa_a", qa_a),
        "qa_b": write_input(root / "qa_b", qa_b),
    }
