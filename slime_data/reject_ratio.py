"""The ``--max-reject-ratio`` check of ``ingest`` and ``build``: a run that could not read most of
its rows (or kept none) fails loudly instead of exiting 0 with an empty or tiny shard set.

Only *unreadable* rows count (steps ``source`` and ``load_image``: malformed annotations,
missing, broken or out-of-root images): those mean the set-up is wrong (a wrong ``--root``, an
images folder that is not where the annotations say). Filters, dedup, decontamination and caps
drop rows on purpose, as the recipe says, and never count; but a run that keeps nothing at all
fails too, whatever dropped the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slime_data.ui import UserError

DEFAULT_MAX_REJECT_RATIO = 0.5
UNREADABLE_STEPS = ("source", "load_image")


class TooManyRejects(UserError):
    """The run's output is written (inspect it and ``rejects.jsonl``) but it is not usable as is."""


@dataclass(frozen=True)
class RejectRatio:
    read: int  # rows that came out of the source adapters
    unreadable: int  # rejected by UNREADABLE_STEPS
    kept: int
    top_reasons: list[tuple[str, int]]  # the commonest unreadable reasons, most first

    @property
    def ratio(self) -> float:
        return self.unreadable / self.read if self.read else 0.0


def reject_ratio(manifest: dict[str, Any]) -> RejectRatio:
    by_step: dict[str, dict[str, int]] = manifest["rejects"]["by_step"]
    reasons: dict[str, int] = {}
    for step in UNREADABLE_STEPS:
        for reason, n in by_step.get(step, {}).items():
            reasons[reason] = reasons.get(reason, 0) + n
    kept = manifest["num_rows"]
    top = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:3]
    read = kept + manifest["rejects"]["total"]
    return RejectRatio(read=read, unreadable=sum(reasons.values()), kept=kept, top_reasons=top)


def check_reject_ratio(manifest: dict[str, Any], max_ratio: float, where: str) -> RejectRatio:
    """Raise ``TooManyRejects`` when more than ``max_ratio`` of the rows read were unreadable, or
    when rows were read and none kept (unless ``max_ratio`` is 1); else return the numbers."""
    numbers = reject_ratio(manifest)
    advice = f"see {where}/rejects.jsonl; --max-reject-ratio 1 accepts the result as it is"
    if numbers.ratio > max_ratio:
        reasons = ", ".join(f"{reason} ({n})" for reason, n in numbers.top_reasons)
        raise TooManyRejects(
            f"{numbers.unreadable} of {numbers.read} rows ({numbers.ratio:.0%}) could not be read, above "
            f"--max-reject-ratio {max_ratio:g}; commonest reasons: {reasons}. The output is written but "
            f"incomplete: {advice}"
        )
    if numbers.read and not numbers.kept and max_ratio < 1:
        by_step = manifest["rejects"]["by_step"]
        counts = sorted(
            ((n, f"{step} {reason}") for step, reasons in by_step.items() for reason, n in reasons.items()),
            key=lambda item: (-item[0], item[1]),
        )
        reasons = ", ".join(f"{label} ({n})" for n, label in counts[:3])
        raise TooManyRejects(f"every one of the {numbers.read} rows read was rejected ({reasons}): {advice}")
    return numbers
