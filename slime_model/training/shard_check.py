"""Before the first step of a run: every shard of every mix stage the recipe reads is checked against
the mix manifest, so a damaged file is one error naming it, not a pyarrow traceback when its stage
starts (hours in).

Always: present, size as recorded, Arrow file footer readable, schema the record schema, row count
as recorded. The sha256 as recorded too with `verify=True`; by default (`verify=None`) only for a
mix stage of at most `SHA256_AUTO_BYTES` (hashing reads every byte: ~1 s per GB on one core, too
long to do unasked at the 2M-row scale). `slime-data validate` checks a mix in full.
"""

from __future__ import annotations

from collections.abc import Iterable

from slime_data.mix.manifest import MixManifest
from slime_data.shards import ShardSetError, check_shard_file

SHA256_AUTO_BYTES = 2 * 2**30  # per mix stage


def verify_mix_stages(mix: MixManifest, stages: Iterable[str], verify: bool | None = None) -> None:
    """Raise ShardSetError naming the first damaged shard of `stages` (and how many more there are)."""
    problems = []
    for stage in sorted(set(stages)):
        shards = mix.data["stages"][stage]["shards"]
        sha256 = verify if verify is not None else sum(s["bytes"] for s in shards) <= SHA256_AUTO_BYTES
        for shard in shards:
            path = mix.resolve(shard["file"])
            found, _ = check_shard_file(path, shard, verify_sha256=sha256)
            problems += [f"{path}: {problem.split(': ', 1)[1]}" for problem in found]
    if problems:
        more = f" (and {len(problems) - 1} more damaged shard(s))" if len(problems) > 1 else ""
        raise ShardSetError(
            f"mix {mix.path}: {problems[0]}{more}; delete the damaged file(s) and rerun `{mix.data['command']}`, "
            f"or check the whole mix with `slime-data validate {mix.path}`"
        )
