"""CPU runtime settings: thread count, serial static execution, allocator settings."""

from __future__ import annotations

import numpy as np
import paddle

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
