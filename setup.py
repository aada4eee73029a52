"""Build of the native extension ``stratum_pool._native``; all package metadata lives in pyproject.toml.

Works for ``python setup.py build_ext --inplace`` and for ``pip install -e .`` / ``pip install .``.
"""

from __future__ import annotations

import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

# Whole-program flags only: the CPU-specific SHA code gets its instruction sets from function-level target
# attributes in native/sha256_shani.c and native/sha256_armv8.c, so the module runs on any CPU of the arch.
COMPILE_ARGS = [] if sys.platform == "win32" else ["-O3", "-Wall", "-Wno-unused-function"]
LINK_ARGS = [] if sys.platform == "win32" else ["-pthread"]

native = Extension(
    "stratum_pool._native",
    sources=[
        "native/_native.pyx",
        "native/sha256.c",
        "native/sha256_shani.c",
        "native/sha256_armv8.c",
        "native/scrypt.c",
        "native/share.c",
        "native/groupcommit.c",
        "native/hex.c",
    ],
    include_dirs=["native"],
    depends=["native/sha256.h", "native/scrypt.h", "native/share.h", "native/shareset.pxi", "native/sharecore.pxi", "native/v1submit.pxi",
             "native/groupcommit.h", "native/groupcommit.pxi", "native/template.pxi", "native/hex.h"],
    extra_compile_args=COMPILE_ARGS,
    extra_link_args=LINK_ARGS,
)

setup(
    ext_modules=cythonize(  # type: ignore[no-untyped-call]
        [native],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    ),
)
