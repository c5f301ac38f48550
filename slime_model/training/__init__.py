"""The reference DeepSpeed trainer: recipes of alternating stages over a mix of Arrow shards.

Modules: recipe (the YAML recipe model, `load_recipe`, `plan_stages`), data (the stage stream),
collate (micro-batches), ds_config (DeepSpeed config and batch layout), model_init (start weights,
per-stage loading), stage (one stage's engine and loop), guards (what stops a stage: non-finite,
empty and diverging steps, dropped rows), runner (`train`: all stages), overrides (`--override`),
shard_check (the mix's shards before the first step), checkpoint (resume state, weights-only
loading, completion markers), telemetry (metrics, reporters, plot), distributed (process group, CPU
threads), cli (`slime-model train`; `python -m slime_model.training` for launchers).
"""
