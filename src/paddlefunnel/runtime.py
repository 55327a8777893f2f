"""CPU math settings that must be in place before Paddle (and its bundled Intel MKL) is imported.

Paddle's CPU wheel ships Intel MKL, which on AMD processors picks a generic code path unless told the
CPU handles AVX2; on this project's AMD EPYC machines that makes every matmul ~3x slower (measured:
38 vs 107 GFLOP/s on one thread). We set MKL_DEBUG_CPU_TYPE=5 on AMD CPUs only, never overriding a
value the user chose, and only when Paddle has not been imported yet (MKL reads it once, at load).
"""

from __future__ import annotations

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


def configure_cpu_math() -> bool:
    """Returns True when the MKL setting was applied by this call."""
    # Paddle warns at import that its C++-extension build cache (ccache) is missing; nothing here builds
    # extensions, so the note is noise for users.
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
    if "paddle" in sys.modules or "MKL_DEBUG_CPU_TYPE" in os.environ:
        return False
    if cpu_vendor() != "AuthenticAMD":
        return False
    os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
    return True


def use_all_cpu_cores(threads: int | None = None) -> int:
    """Paddle's dynamic graph runs one CPU thread by default; jobs that own the machine should use all."""
    import paddle

    count = threads or int(os.environ.get("OMP_NUM_THREADS", 0) or os.cpu_count() or 1)
    paddle.base.core.set_num_threads(count)
    return count
