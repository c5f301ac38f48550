"""The reference DeepSpeed trainer: recipes of alternating stages over a mix of Arrow shards.

Modules: recipe (the YAML recipe model, `load_recipe`, `plan_stages`), data (the stage stream),
collate (micro-batches), ds_config (DeepSpeed config and batch layout), model_init (start weights,
per-stage loading), stage (one stage's engine and loop), runner (`train`: all stages), checkpoint
(resume state, completion markers), telemetry (metrics, reporters, plot), cli (`slime-model train`;
`python -m slime_model.training` for launchers).
"""
