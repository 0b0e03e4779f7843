"""Process-wide memory settings for long streaming jobs (imports, exports)."""

import ctypes
import functools

M_MMAP_THRESHOLD = -3  # mallopt's parameter (glibc's malloc.h)
MMAP_THRESHOLD = 1 << 20


@functools.cache
def fix_malloc_mmap_threshold() -> bool:
    """Have glibc's malloc map every buffer of 1 MiB or more on its own, for the rest of the
    process (and of the processes it forks).

    By default glibc raises that threshold each time such a buffer is freed, so that after
    the first batches the importer's buffers of megabytes come from the heap, whose free
    space fragments: both processes then grew by about 3 MB with each doubling of the file
    (236 MB at 50,000 conversations, 262 MB at 400,000). With the threshold fixed, each batch's
    buffers are mapped and given back whole (220 and 223 MB), for about a tenth more CPU (the
    kernel hands out fresh pages). Exports: a cold 2x Parquet export peaked 257-260 MB
    instead of 273-276 MB (bench/RESULTS.md). False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    except (OSError, AttributeError):
        return False
