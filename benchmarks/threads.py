"""One BLAS thread for the table, unless --default-threads is given.

BLAS libraries read their thread count once, when they are loaded: run.py imports this
module before anything that imports numpy, torch or jax.
"""

from __future__ import annotations

import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")
ORIGINAL_THREAD_ENV = {name: os.environ.get(name) for name in (*THREAD_VARIABLES, "XLA_FLAGS")}
SINGLE_THREADED = "--default-threads" not in sys.argv[1:]
if SINGLE_THREADED:
    for _name in THREAD_VARIABLES:
        os.environ[_name] = "1"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
