"""glibc's C heap (malloc): its totals (:func:`native_heap`) and giving its free pages back to the OS
(:func:`trim_native_heap`, which :mod:`voxgate.memory_care` calls when the server goes idle). ctypes only:
no prometheus-client here (the metric is :class:`~voxgate.telemetry.metrics.NativeHeapCollector`)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")
    ]  # fmt: skip


def _glibc() -> ctypes.CDLL | None:
    """glibc's malloc functions (mallinfo2 needs glibc >= 2.33), or None on another C library."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


@dataclass(frozen=True, slots=True)
class NativeHeap:
    in_use: int
    """Bytes malloc has handed out: C libraries (onnxruntime, SQLite), numpy buffers, Python objects over
    512 bytes (smaller ones live in Python's own arenas)."""
    free: int
    """Bytes in malloc's free chunks, kept for reuse. Their pages stay resident unless they are at the top
    of a heap or :func:`trim_native_heap` gave them back (the figure does not change when it does)."""


def native_heap() -> NativeHeap | None:
    """glibc's malloc totals over all its arenas, or None where glibc is not the C library."""
    if _LIBC is None:
        return None
    info = _LIBC.mallinfo2()
    return NativeHeap(in_use=info.uordblks + info.hblkhd, free=info.fordblks)


def trim_native_heap() -> bool:
    """Give the free pages of glibc's heaps back to the OS (``malloc_trim(0)``, also those below the top of
    each heap); True when memory was released. A few ms to a few tens of ms for this server's heap."""
    return _LIBC is not None and bool(_LIBC.malloc_trim(0))
