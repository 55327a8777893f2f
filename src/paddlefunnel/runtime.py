"""CPU math settings, applied when `paddlefunnel` is imported, whatever the import order.

Paddle's CPU wheel ships Intel MKL, which on AMD processors picks a generic code path unless told the CPU
handles AVX2; on this project's AMD EPYC machines that makes every matmul ~3x slower (measured: 38 vs 107 GFLOP/s
on one thread). We set MKL_DEBUG_CPU_TYPE=5 on AMD CPUs only, never overriding a value the user chose. MKL reads
it once, when it first picks its code path (its first matrix product, or `mkl_serv_cpu_detect`), not when Paddle is
imported: so the setting works after `import paddle` too, as long as no Paddle math ran before. If some did, the
slow path is already fixed for the process and we say so once, with the fix.

This module is imported before Paddle on purpose (the package's `__init__` runs it first), so it imports
`paddle` only inside the functions that run later.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings


def cpu_vendor() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


MKL_SETTING = "MKL_DEBUG_CPU_TYPE"
MKL_AVX2 = 5  # the value of MKL_SETTING, and what `mkl_serv_cpu_detect` answers once MKL runs its AVX2 path


class SlowMathWarning(RuntimeWarning):
    """Paddle ran matrix math before paddlefunnel could set up MKL: this process stays on the slow path."""


def configure_cpu_math() -> bool:
    """Set MKL_DEBUG_CPU_TYPE=5 on AMD CPUs unless the user set it; True when this call set it.

    When Paddle is already imported, MKL is asked to pick its code path now (with the setting in place); if it
    had picked one already (Paddle math ran before this import), a SlowMathWarning says how to avoid that.
    """
    # Paddle warns at import that its C++-extension build cache (ccache) is missing; nothing here builds
    # extensions, so the note is noise for users.
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
    if MKL_SETTING in os.environ or cpu_vendor() != "AuthenticAMD":
        return False
    os.environ[MKL_SETTING] = str(MKL_AVX2)
    if "paddle" in sys.modules and mkl_code_path() not in (None, MKL_AVX2):
        warnings.warn(
            "Paddle ran matrix math before paddlefunnel was imported, so Intel MKL already chose its slow generic "
            "path for this AMD CPU (about 3x slower matrix products for the rest of the process). Import "
            f"paddlefunnel before running any Paddle math, or start Python with {MKL_SETTING}={MKL_AVX2} set.",
            SlowMathWarning, stacklevel=3)
    return True


def mkl_code_path() -> int | None:
    """The code path Paddle's bundled MKL runs (it picks one on first use; this call makes it pick): 0 = generic,
    5 = AVX2, ...; None when Paddle ships no MKL (GPU or ARM builds) or is not imported yet."""
    if "paddle" not in sys.modules:
        return None
    library = os.path.join(os.path.dirname(sys.modules["paddle"].__file__), "libs", "libmklml_intel.so")
    try:
        detect = ctypes.CDLL(library).mkl_serv_cpu_detect  # the library Paddle loaded (same handle)
    except (OSError, AttributeError):
        return None
    detect.restype = ctypes.c_int
    return int(detect())


def users_omp_threads() -> str | None:
    """The user's OMP_NUM_THREADS, or None when they did not set it.

    Paddle's import sets it to "1" when it is unset, so once Paddle is imported the environment no longer tells
    an unset value from a chosen 1 (measured: `import paddle` first made `use_all_cpu_cores` run one thread, half
    the speed). Then the environment the process started with (/proc/self/environ on Linux) still tells.
    """
    if "paddle" not in sys.modules:
        return os.environ.get("OMP_NUM_THREADS")
    try:
        with open("/proc/self/environ", "rb") as handle:
            entries = handle.read().split(b"\0")
    except OSError:
        return os.environ.get("OMP_NUM_THREADS")
    prefix = b"OMP_NUM_THREADS="
    return next((entry[len(prefix):].decode() for entry in entries if entry.startswith(prefix)), None)


# Read when `paddlefunnel` is imported: before Paddle's import changes it, or from the start-up environment.
_USER_OMP_THREADS = users_omp_threads()


def use_all_cpu_cores(threads: int | None = None) -> int:
    """Paddle's dynamic graph runs one CPU thread by default; jobs that own the machine should use all.

    Also makes static programs (`paddle.jit.to_static`) run their ops one after another: by default Paddle's
    executor runs independent ops (the q/k/v projections, say) at the same time on its own threads, and as each
    op already uses every core, they fight over the cores (measured: FunnelBaseModel small-base, 8 x 512, 6.4 s
    concurrent, 3.5 s in sequence, the dynamic graph's speed).
    """
    import paddle

    count = threads or int(_USER_OMP_THREADS or 0) or len(os.sched_getaffinity(0)) or 1
    paddle.base.core.set_num_threads(count)
    paddle.set_flags({SERIAL_STATIC_FLAG: True})
    _CONFIGURED_THREADS[:] = [count]
    return count


SERIAL_STATIC_FLAG = "FLAGS_new_executor_serial_run"


_CONFIGURED_THREADS: list[int] = []  # what use_all_cpu_cores set, for restore_cpu_threads


def dynamic_graph_threads() -> int:
    """The thread count Paddle's dynamic graph runs: what `use_all_cpu_cores` set, else Paddle's default of one.
    The C kernels (modeling/cpu_kernels.py) run on the same number."""
    return _CONFIGURED_THREADS[0] if _CONFIGURED_THREADS else 1


def restore_cpu_threads() -> None:
    """Re-apply the dynamic graph's thread count set by `use_all_cpu_cores` (if it was called).

    Running a Paddle Inference predictor leaves the dynamic graph on one thread (measured: a 2-thread matmul
    drops from 190 to 74 GFLOP/s after a predictor run), so code that runs both calls this after each run.
    """
    if _CONFIGURED_THREADS:
        import paddle

        paddle.base.core.set_num_threads(_CONFIGURED_THREADS[0])


def reuse_freed_memory() -> bool:
    """Keep memory freed by Paddle (and PyTorch) in the process instead of handing it back to the OS.

    Both free and re-allocate every intermediate tensor. glibc serves large blocks with mmap and unmaps them
    on free, so every op writes to fresh pages and pays a page fault per 4 KiB: measured here, a 100 MB add
    52 -> 12 ms and Paddle Inference's relative shift 208 -> 50 ms with this setting. Process-wide (the
    process then keeps its peak size); opt out with PADDLEFUNNEL_REUSE_FREED_MEMORY=0. True when applied.
    """
    if os.environ.get("PADDLEFUNNEL_REUSE_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameters from <malloc.h>
    served_from_heap = libc.mallopt(m_mmap_threshold, 1 << 30) or libc.mallopt(m_mmap_threshold, 1 << 25)
    return bool(served_from_heap and libc.mallopt(m_trim_threshold, 2**31 - 1))


def release_freed_memory() -> bool:
    """Hand memory kept by `reuse_freed_memory` back to the OS (glibc malloc_trim), e.g. between jobs."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False

