"""Bridges from the evaluation harnesses people use to SliME's one generation path.

`lmms_eval.py` is an lmms-eval 0.7 chat model, registered as `slime_model` through lmms-eval's
`lmms_eval.models` entry point (install the `lmms-eval` extra). Each bridge only translates the
harness's requests into `slime_model.generation.GenerationRequest`s and hands them to
`generate_batch`, so a harness scores exactly what `slime-model generate` and `serve` answer.
"""
