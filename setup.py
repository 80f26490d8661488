"""The optional C extension; every other setting is in pyproject.toml.

``optional=True``: without a C compiler (or when the build fails) the package installs
and runs on its pure-Python core (see src/auditmw/_native/README.md).

SHA-256 comes from OpenSSL's libcrypto where its headers are found (Debian:
``libssl-dev``), else from the extension's portable C code.  ``AUDITMW_NATIVE_SHA=portable``
(or ``=openssl``) forces the choice.
"""

import os
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = "src/auditmw/_native/"
WARNINGS = [] if sys.platform == "win32" else ["-Wall", "-Wextra"]
PROBE = """
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
int main(void) {
    SHA256_CTX c; unsigned char d[32];
    SHA256_Init(&c); SHA256_Update(&c, "", 0); SHA256_Final(d, &c);
    return d[0] == 0xe3 ? 0 : 1;
}
"""


class BuildExt(build_ext):
    """Link libcrypto's SHA-256 when it compiles and links here."""

    def build_extensions(self) -> None:
        choice = os.environ.get("AUDITMW_NATIVE_SHA", "auto")
        use = choice == "openssl" or (choice == "auto" and self._has_openssl())
        for ext in self.extensions:
            if use:
                ext.define_macros.append(("AM_HAVE_OPENSSL", "1"))
                ext.libraries.append("crypto")
        print(f"auditmw._native: SHA-256 from {'OpenSSL libcrypto' if use else 'portable C'}")
        super().build_extensions()

    def _has_openssl(self) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "probe.c")
            with open(source, "w") as handle:
                handle.write(PROBE)
            try:
                objects = self.compiler.compile([source], output_dir=tmp)
                self.compiler.link_executable(
                    objects, "probe", output_dir=tmp, libraries=["crypto"]
                )
            except Exception:  # noqa: BLE001 - any failure means: no usable libcrypto
                return False
        return True


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "auditmw._native._core",
            sources=[
                NATIVE + "_core.c",
                NATIVE + "am_chain.c",
                NATIVE + "am_event.c",
                NATIVE + "am_headers.c",
                NATIVE + "am_merkle.c",
                NATIVE + "am_sha256.c",
                NATIVE + "am_time.c",
            ],
            depends=[
                NATIVE + "am_chain.h",
                NATIVE + "am_event.h",
                NATIVE + "am_headers.h",
                NATIVE + "am_merkle.h",
                NATIVE + "am_sha256.h",
                NATIVE + "am_time.h",
            ],
            extra_compile_args=WARNINGS,
            optional=True,
        )
    ],
)
