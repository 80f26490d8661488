#!/usr/bin/env bash
# fuzz/run.sh [seconds]: build the harnesses (fuzz_chain.c: the chain step and the Merkle root; fuzz_parse.c:
# the header pick, event time and event id) with AddressSanitizer and UBSan and fuzz the
# native core's C code for that long (default 30 s). Exits non-zero on any finding.
#
# With clang (and its libFuzzer runtime): a libFuzzer binary, coverage-guided; new inputs
# go to fuzz/out/corpus, a crashing input to fuzz/out/crash-*. Without: gcc builds the same
# harness with driver.c (the seed corpus, then random and mutated inputs).
set -euo pipefail
seconds="${1:-30}"
here="$(cd "$(dirname "$0")" && pwd)"
native="$here/../src/auditmw/_native"
out="${FUZZ_OUT:-$here/out}"
mkdir -p "$out/corpus" "$out/corpus_parse"

sources=("$here/fuzz_chain.c" "$native/am_chain.c" "$native/am_merkle.c" "$native/am_sha256.c")
parse_sources=("$here/fuzz_parse.c" "$native/am_headers.c" "$native/am_time.c")
flags=(-std=c99 -g -O1 -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Werror
  -fno-omit-frame-pointer -fno-sanitize-recover=all -I"$native")
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

has_libfuzzer() {
  command -v clang >/dev/null 2>&1 || return 1
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' \
    | clang -fsanitize=fuzzer -x c - -o "$out/probe" >/dev/null 2>&1
}

# The Python binding is not fuzzed here (tests/native drive it); it must compile cleanly.
python="${PYTHON:-$(command -v "$here/../.venv/bin/python" || command -v python3)}"
include="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
"${CC:-cc}" -fsyntax-only -std=c99 -Wall -Wextra -Werror -I"$include" -I"$native" "$native/_core.c" \
  "$native/am_event.c" "$native/am_merkle.c"

# Both SHA-256 sources setup.py may build with: the portable C code, and OpenSSL's
# libcrypto (-DAM_HAVE_OPENSSL) where its headers are; the time is split between them.
variants=(portable)
if printf '#include <openssl/sha.h>\n' | "${CC:-cc}" -E -x c - >/dev/null 2>&1; then
  variants+=(openssl)
fi
# atheris (PyPI) drives the Python entry points, against an ASan build of the extension.
atheris=""
if command -v clang >/dev/null 2>&1 && "$python" -c "import atheris" >/dev/null 2>&1; then
  atheris=1
fi
parts=$(( ${#variants[@]} + 1 + ${atheris:-0} ))
share=$(( seconds / parts > 0 ? seconds / parts : 1 ))

for variant in "${variants[@]}"; do
  extra=()
  [ "$variant" = openssl ] && extra=(-DAM_HAVE_OPENSSL -lcrypto)
  if has_libfuzzer; then
    echo "fuzz ($variant SHA-256): clang libFuzzer + ASan + UBSan, ${share}s"
    clang "${flags[@]}" -fsanitize=fuzzer,address,undefined,integer \
      -fno-sanitize=unsigned-integer-overflow,unsigned-shift-base \
      "${sources[@]}" "${extra[@]}" -o "$out/fuzz_chain_$variant"
    "$out/fuzz_chain_$variant" -max_total_time="$share" -max_len=4096 -timeout=10 \
      -artifact_prefix="$out/$variant-" -print_final_stats=1 "$out/corpus" "$here/corpus"
  else
    echo "fuzz ($variant SHA-256): clang's libFuzzer not found; gcc + ASan + UBSan with driver.c, ${share}s"
    gcc "${flags[@]}" -fsanitize=address,undefined "${sources[@]}" "$here/driver.c" \
      "${extra[@]}" -o "$out/fuzz_chain_gcc_$variant"
    "$out/fuzz_chain_gcc_$variant" -max_total_time="$share" "$here/corpus"
  fi
done
if has_libfuzzer; then
  echo "fuzz (headers, time, ids): clang libFuzzer + ASan + UBSan, ${share}s"
  clang "${flags[@]}" -fsanitize=fuzzer,address,undefined,integer \
    -fno-sanitize=unsigned-integer-overflow,unsigned-shift-base \
    "${parse_sources[@]}" -o "$out/fuzz_parse"
  "$out/fuzz_parse" -max_total_time="$share" -max_len=4096 -timeout=10 \
    -artifact_prefix="$out/parse-" -print_final_stats=1 "$out/corpus_parse" "$here/corpus"
else
  echo "fuzz (headers, time, ids): gcc + ASan + UBSan with driver.c, ${share}s"
  gcc "${flags[@]}" -fsanitize=address,undefined "${parse_sources[@]}" "$here/driver.c" \
    -o "$out/fuzz_parse_gcc"
  "$out/fuzz_parse_gcc" -max_total_time="$share" "$here/corpus"
fi
if [ -n "$atheris" ]; then
  echo "fuzz (Python entry points): atheris + an ASan/UBSan build of _core, ${share}s"
  extra=()
  [ "${variants[-1]}" = openssl ] && extra=(-DAM_HAVE_OPENSSL -lcrypto)
  suffix="$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
  mkdir -p "$out/py" "$out/pycorpus"
  # UBSan traps (no runtime to link into a shared object); ASan's comes with atheris.
  clang -shared -fPIC -std=c99 -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer \
    -fsanitize=address,fuzzer-no-link -fsanitize=undefined -fsanitize-trap=undefined \
    -I"$include" -I"$native" "$native/_core.c" "$native/am_chain.c" "$native/am_sha256.c" \
    "$native/am_headers.c" "$native/am_time.c" "$native/am_event.c" "$native/am_merkle.c" "${extra[@]}" \
    -o "$out/py/_core$suffix"
  preload="$("$python" -c 'import atheris, os; print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))')"
  # CPython's own allocations are not freed at exit: no leak report for the interpreter.
  LD_PRELOAD="$preload" ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" \
    AUDITMW_FUZZ_CORE="$out/py/_core$suffix" \
    "$python" "$here/fuzz_python.py" -max_total_time="$share" -timeout=10 \
    -artifact_prefix="$out/python-" "$out/pycorpus"
else
  echo "fuzz: atheris not installed (pip install atheris) or no clang: Python entry points not fuzzed"
fi
echo "fuzz: no finding"
