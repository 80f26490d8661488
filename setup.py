"""The optional C extension; every other setting is in pyproject.toml.

``optional=True``: without a C compiler (or when the build fails) the package installs
and runs on its pure-Python core (see src/auditmw/_native/README.md).
"""

import sys

from setuptools import Extension, setup

NATIVE = "src/auditmw/_native/"
WARNINGS = [] if sys.platform == "win32" else ["-Wall", "-Wextra"]

setup(
    ext_modules=[
        Extension(
            "auditmw._native._core",
            sources=[NATIVE + "_core.c", NATIVE + "am_chain.c", NATIVE + "am_sha256.c"],
            depends=[NATIVE + "am_chain.h", NATIVE + "am_sha256.h"],
            extra_compile_args=WARNINGS,
            optional=True,
        )
    ]
)
