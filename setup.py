"""Builds the optional C kernels (src/paddlefunnel/modeling/_cpu_kernels.c); everything else is in pyproject.toml.

`optional=True`: without a C compiler the install still succeeds and the model runs Paddle's own ops instead
(`paddlefunnel env` says which; modeling/cpu_kernels.py explains what the kernels are for).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "paddlefunnel.modeling._cpu_kernels",
            sources=["src/paddlefunnel/modeling/_cpu_kernels.c"],
            # -fopenmp-simd: the `omp simd` reductions vectorise; threads come from the OpenMP runtime Paddle
            # already loaded (see the C file), so no OpenMP library is linked. -fno-math-errno: sqrtf vectorises
            # (same results; only errno, which nothing reads, is no longer set).
            extra_compile_args=["-O3", "-std=gnu11", "-fopenmp-simd", "-fno-math-errno"],
            optional=True,
        )
    ]
)
