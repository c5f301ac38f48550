"""Process group set-up for one process, `torchrun`, the `deepspeed` launcher and multi-node hostfiles.

The launchers export RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; a plain
`slime-model train` gets single-process defaults (a world of one meeting through a temp file), so the
same entry point runs everywhere. NCCL on
GPUs, gloo on CPU.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

# What torchrun / deepspeed launchers export; a process without them is a world of one (init_distributed).
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _skip_cpu_shm_kernel() -> None:
    """Keep DeepSpeed from JIT-compiling its shared-memory all-reduce kernel on CPU.

    The kernel only speeds up `inference_all_reduce` (tensor-parallel inference); training never
    calls it, yet building it costs ~90 s of ninja/g++ on first use and probing every other op
    runs more compilers. Marking it incompatible before the backend starts makes DeepSpeed use
    gloo alone, which is what a CPU run needs.
    """
    import deepspeed.ops

    probed = deepspeed.ops.__dict__.get("__compatible_ops__") or {}
    deepspeed.ops.__compatible_ops__ = {**probed, "deepspeed_shm_comm": False}


def init_distributed() -> DistInfo:
    """Start (once) the default process group with launcher settings or single-process defaults."""
    import deepspeed
    import deepspeed.comm as dist

    alone = "RANK" not in os.environ  # not launched by torchrun / deepspeed: a world of one
    if alone:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    # DeepSpeed's ZeRO calls torch collectives torch now calls deprecated; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r"`torch\.distributed\.\w+` is deprecated", category=FutureWarning)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        _skip_cpu_shm_kernel()
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        if alone:  # the rendezvous is a new file, not a TCP port (a port picked free can be taken by
            # another process before the store binds it: EADDRINUSE on a busy machine)
            store = Path(tempfile.gettempdir()) / f"slime-dist-{os.getpid()}-{uuid.uuid4().hex}"
            deepspeed.init_distributed(
                dist_backend=backend, auto_mpi_discovery=False, init_method=f"file://{store}", rank=0, world_size=1
            )
        else:
            deepspeed.init_distributed(dist_backend=backend)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, device=device)


def cpu_threads(cores: int, local_ranks: int, data_workers: int) -> int:
    """Intra-op threads per rank on CPU: the cores left after the DataLoader workers, shared by the
    ranks of this node (at least 1). torch's default (every core, per process) oversubscribes
    the cores as soon as a data worker or a second rank runs; OpenMP threads then spin waiting for
    each other, which costs 3x the CPU time of the tiny recipe on a busy 2-core machine."""
    return max(1, (cores - local_ranks * data_workers) // max(local_ranks, 1))


def set_cpu_threads(dist: DistInfo, data_workers: int) -> None:
    """On CPU, size torch's thread pool with `cpu_threads` unless the user chose (OMP_NUM_THREADS)."""
    if dist.device.type != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("LOCAL_SIZE") or "1")  # torchrun / deepspeed
    torch.set_num_threads(cpu_threads(len(os.sched_getaffinity(0)), local_ranks, data_workers))


def barrier() -> None:
    import deepspeed.comm as dist

    dist.barrier()


def all_reduce(values: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Reduce a small float64 tensor over ranks (on the device the backend wants)."""
    import deepspeed.comm as dist

    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    tensor = values.detach().to(device=device, dtype=torch.float64)
    dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}[op])
    return tensor.cpu()
