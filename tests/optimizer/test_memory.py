"""Freed memory kept while a plan runs, and given back after."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from optimizer import memory

pytestmark = pytest.mark.skipif(memory._libc is None, reason="glibc only")

MB = 1024 * 1024


def _faults() -> int:
    """This thread's page faults (other threads of the test process may allocate)."""
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / MB


def _refill_faults(size_mb: int) -> int:
    """Page faults of filling an array of ``size_mb`` made right after one was freed."""
    np.ones(size_mb * MB // 8).sum()
    before = _faults()
    np.ones(size_mb * MB // 8).sum()
    return _faults() - before


def test_a_freed_large_array_is_reused_within_and_mapped_afresh_outside() -> None:
    with memory.keep_freed_memory():
        assert memory.keeping()
        kept = _refill_faults(96)
    assert not memory.keeping()
    fresh = _refill_faults(96)
    assert kept < 10  # the heap hands the same pages out again
    assert fresh > 20  # above the mmap threshold: new pages from the kernel


def test_the_kept_memory_goes_back_when_the_last_plan_ends() -> None:
    with memory.keep_freed_memory():
        with memory.keep_freed_memory():  # a second plan beside the first
            np.ones(256 * MB // 8).sum()
        assert memory.keeping()
        held = _resident_mb()
    assert not memory.keeping()
    assert _resident_mb() < held - 200
