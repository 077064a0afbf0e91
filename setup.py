"""The optional native helpers: the FireLens parser and text search
(src/ecsguard/logs/receivers/firelens_native.cpp) and detection's JSON readers
(src/ecsguard/detect/json_native.cpp).

Everything else is in pyproject.toml. The extensions need a C++17 compiler and simdjson's
headers and library (Debian: `apt install g++ libsimdjson-dev`); without them the build skips
them (optional=True) and ecsguard does that work in Python, with the same results.
"""

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup


def native(module: str, source: str) -> Pybind11Extension:
    """One optional module over simdjson; a machine without the compiler or headers skips it."""
    return Pybind11Extension(
        module,
        [source],
        depends=["src/ecsguard/core/arrow_strings.h"],  # the string-array reader both share
        libraries=["simdjson"],
        cxx_std=17,
        extra_compile_args=["-O2"],
        optional=True,
    )


setup(
    ext_modules=[
        native("ecsguard._firelens_native", "src/ecsguard/logs/receivers/firelens_native.cpp"),
        native("ecsguard._json_native", "src/ecsguard/detect/json_native.cpp"),
    ]
)
