"""Synthetic detail-heavy VQA: high-resolution charts, tables, document pages and geometry
sheets with exact, programmatically computed questions, answers and rationales, plus a small
caption set in the LLaVA-558K format. ``slime-data synth`` writes it; the ``synth`` source
adapter reads it.
"""

from slime_data.synth.generate import FIGURE_KINDS, SynthConfig, SynthSummary, generate_synth
from slime_data.synth.layout import GENERATOR_VERSION, KINDS

__all__ = ["FIGURE_KINDS", "GENERATOR_VERSION", "KINDS", "SynthConfig", "SynthSummary", "generate_synth"]
