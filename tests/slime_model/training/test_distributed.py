"""CPU thread sizing: torch's default (every core in every process) oversubscribes the cores once a
DataLoader worker or a second rank runs; the trainer leaves the workers their cores."""

from __future__ import annotations

import pytest
import torch

from slime_model.training.distributed import DistInfo, cpu_threads, set_cpu_threads

CPU_RANK = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


CASES = [(2, 1, 1, 1), (2, 1, 0, 2), (16, 2, 2, 6), (1, 1, 2, 1), (8, 8, 1, 1)]


@pytest.mark.parametrize("cores, ranks, workers, threads", CASES)
def test_threads_are_the_cores_left_after_the_data_workers_per_rank(cores, ranks, workers, threads):
    assert cpu_threads(cores, ranks, workers) == threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_two_core_machine_with_one_data_worker_trains_on_one_thread(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_SIZE", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    torch.set_num_threads(2)
    set_cpu_threads(CPU_RANK, data_workers=1)
    assert torch.get_num_threads() == 1


def test_omp_num_threads_set_by_the_user_wins(monkeypatch, restore_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    torch.set_num_threads(2)
    set_cpu_threads(CPU_RANK, data_workers=1)
    assert torch.get_num_threads() == 2
