"""CPU runtime settings: MKL on AMD whatever the import order, thread count, serial static execution, allocator
settings; `python -m paddlefunnel` and `--version`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import paddle

import paddlefunnel
from paddlefunnel import runtime


def test_use_all_cpu_cores_makes_static_programs_run_serially():
    paddle.set_flags({runtime.SERIAL_STATIC_FLAG: False})
    try:
        assert runtime.use_all_cpu_cores(1) == 1
        assert paddle.get_flags([runtime.SERIAL_STATIC_FLAG])[runtime.SERIAL_STATIC_FLAG] is True
    finally:
        runtime.use_all_cpu_cores()


def test_static_program_gives_the_same_result_when_run_serially():
    def branches(x):
        return paddle.matmul(x, x) + paddle.matmul(x * 2.0, x) - paddle.matmul(x, x * 3.0)

    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((16, 16)).astype("float32"))
    expected = branches(x).numpy()
    runtime.use_all_cpu_cores()
    static = paddle.jit.to_static(branches, full_graph=True)
    np.testing.assert_allclose(static(x).numpy(), expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------ import order
ORDER_SCRIPT = """
import os, sys, warnings
warnings.simplefilter("always")
import paddle
if sys.argv[1] == "math_first":
    paddle.matmul(paddle.ones([4, 4]), paddle.ones([4, 4])).numpy()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import paddlefunnel
from paddlefunnel import runtime
slow = [str(w.message) for w in caught if issubclass(w.category, runtime.SlowMathWarning)]
print(json.dumps({"setting": os.environ.get("MKL_DEBUG_CPU_TYPE"), "path": runtime.mkl_code_path(), "slow": slow,
                  "threads": runtime.use_all_cpu_cores()}))
""".replace("import os, sys", "import json, os, sys")


def run_order_script(mode: str, **env: str) -> dict:
    """Import paddle first (as most Paddle users write), then paddlefunnel, in a fresh process."""
    environment = {k: v for k, v in os.environ.items() if k not in ("MKL_DEBUG_CPU_TYPE", "OMP_NUM_THREADS")}
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", ORDER_SCRIPT, mode], capture_output=True, text=True, timeout=300,
                          env=environment)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


AMD = runtime.cpu_vendor() == "AuthenticAMD"


def test_setting_applies_when_paddle_was_imported_first():
    result = run_order_script("paddle_first")
    if AMD:
        assert result["setting"] == "5" and result["path"] == runtime.MKL_AVX2 and not result["slow"]
    else:  # only AMD CPUs need the setting; nothing is changed elsewhere
        assert result["setting"] is None and not result["slow"]


def test_math_before_import_is_reported_with_the_fix():
    result = run_order_script("math_first")
    if AMD:
        assert result["path"] != runtime.MKL_AVX2
        assert len(result["slow"]) == 1 and "MKL_DEBUG_CPU_TYPE=5" in result["slow"][0]
    else:
        assert not result["slow"]


def test_the_users_own_setting_is_kept():
    result = run_order_script("paddle_first", MKL_DEBUG_CPU_TYPE="0")
    assert result["setting"] == "0" and not result["slow"]


def test_thread_count_does_not_depend_on_import_order():
    """Paddle's import sets OMP_NUM_THREADS=1 when it is unset; that must not read as the user's choice."""
    cores = len(os.sched_getaffinity(0))
    assert run_order_script("paddle_first")["threads"] == cores
    assert run_order_script("paddle_first", OMP_NUM_THREADS="1")["threads"] == 1


def test_python_dash_m_and_version():
    done = subprocess.run([sys.executable, "-m", "paddlefunnel", "--version"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.startswith(f"paddlefunnel {paddlefunnel.__version__} (paddle ")
    done = subprocess.run([sys.executable, "-m", "paddlefunnel", "flops", "--preset", "nope"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "unknown preset 'nope'" in done.stderr
