"""The optional native FireLens parser (src/ecsguard/logs/receivers/firelens_native.cpp).

Everything else is in pyproject.toml. The extension needs a C++17 compiler and simdjson's
headers and library (Debian: `apt install g++ libsimdjson-dev`); without them the build skips
it (optional=True) and ecsguard reads FireLens bodies in Python, with the same results.
"""

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup

setup(
    ext_modules=[
        Pybind11Extension(
            "ecsguard.logs.receivers._firelens_native",
            ["src/ecsguard/logs/receivers/firelens_native.cpp"],
            libraries=["simdjson"],
            cxx_std=17,
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
