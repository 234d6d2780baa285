"""Freed memory kept in the process while a plan is made.

glibc hands every freed block above its mmap threshold (32 MB at most) back to the
kernel, so the next array of that size is fresh memory: the kernel zeroes it and, in a
virtual machine that reports free pages to its host, the host must back it again. On
the 2-core machines this project is measured on, that costs 1.2-2 s per GB, against
under 0.1 s per GB for memory the heap hands out again. A plan of 100,000 devices
makes and drops arrays of 224 MB (28 million columns) by the dozen; one of 10,000
devices stays under the threshold. :func:`keep_freed_memory` makes glibc serve blocks
of every size from its heap and keep what is freed for as long as a plan runs; then the
heap's free memory goes back to the kernel (``malloc_trim``).

Elsewhere than glibc (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# mallopt's parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4

#: What glibc's own adjustment reaches in a process that has freed an array of 32 MB
#: or more (any plan of a few thousand devices): restored after a plan, since setting
#: any threshold turns that adjustment off for good.
SETTLED_MMAP_THRESHOLD = 32 * 1024 * 1024
SETTLED_TRIM_THRESHOLD = 2 * SETTLED_MMAP_THRESHOLD
DEFAULT_MMAP_MAX = 65536
#: The largest free top of the heap left in place during a plan (mallopt takes an int).
KEEP_TRIM_THRESHOLD = 2**31 - 1

_lock = threading.Lock()
_holders = 0


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return libc


_libc = _glibc()


def keeping() -> bool:
    """Whether freed memory is being kept now (a plan is running with it)."""
    return _holders > 0


@contextmanager
def keep_freed_memory() -> Iterator[None]:
    """Within: large blocks come from glibc's heap and freed ones stay there for the
    next array. Plans running side by side share one such stretch; the last to end
    gives the free memory back. Blocks allocated in threads other than the main one
    may still be mapped on their own (glibc's per-thread heaps are 64 MB at most)."""
    global _holders
    if _libc is None:
        yield
        return
    with _lock:
        _holders += 1
        if _holders == 1:
            _libc.mallopt(M_MMAP_MAX, 0)
            _libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                _libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                _libc.mallopt(M_MMAP_THRESHOLD, SETTLED_MMAP_THRESHOLD)
                _libc.mallopt(M_TRIM_THRESHOLD, SETTLED_TRIM_THRESHOLD)
                _libc.malloc_trim(0)
