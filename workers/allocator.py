"""Keep freed memory in the process instead of returning it to the OS after every step.

A training step allocates temporaries of a few MB (activations, optimizer intermediates)
and frees them again. With glibc's defaults, blocks that large are mmap'd and unmapped
every time, so each step pays for fresh zeroed pages: on a small CPU this doubled the
cost of an optimizer step. Raising the mmap and trim thresholds makes glibc reuse the
same heap memory. The setting is process-wide and only changes when memory goes back
to the OS, never what a computation returns.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks below this size come from the heap (glibc caps the value at 32 MiB on 64-bit).
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory kept at the top of the heap before it is returned to the OS.
TRIM_THRESHOLD = 512 * 1024 * 1024


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc malloc once per process; False where it is not glibc (nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
