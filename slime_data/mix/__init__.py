"""``slime-data mix``: the SliME training mixture as one Arrow shard set per stage plus ``manifests/mix.json``.

Modules, in the order a mix runs: ``recipe`` (the YAML recipe, ``--target`` parsing), ``inputs``
(shard sets by memory map, row pointers), ``hygiene`` (the build's dedup/decontamination steps
across all inputs), ``allocate`` (rows per stage and source), ``plan`` (draws and the seeded
shuffle, saved for resume), ``write`` (parallel gathering into output shards), ``run``
(``run_mix``, the whole thing), ``manifest`` (mix.json, its JSON Schema, validation) and
``report`` (composition table rows and plot).

Readers of a finished mix (the trainer) need only::

    from slime_data.mix import load_mix_manifest
    mix = load_mix_manifest("manifests/mix.json")      # validated against manifests/mix.schema.json
    mix.stages                                          # ["pretrain", "sft"]
    mix.shard_paths("sft"), mix.stage_dir("sft")        # Arrow files / a regular shard set folder
"""

from slime_data.mix.manifest import MixManifest, MixManifestError, load_mix_manifest, validate_mix

__all__ = ["MixManifest", "MixManifestError", "load_mix_manifest", "validate_mix"]
