"""Extract the code blocks of README.md and docs/*.md, and run them (``tests/test_docs.py``).

The conventions, visible in the Markdown source as an HTML comment on the line(s)
just before a fenced block (blank lines between them are allowed):

* ``<!-- test: fragment (REASON) -->``: the block is deliberately not run (it names a
  production host, installs packages, starts a server, runs for minutes, …).  A
  Python fragment must still parse.
* ``<!-- test: continue -->``: this Python block continues the document's previous
  Python block; the two (or more) run as one program.
* ``<!-- test: file NAME -->``: the block (TOML, JSON, …) is written to ``NAME`` in the
  working directory when the document reaches it, for the blocks after it to use.
* ``<!-- test: setup NAME -->``: before the block, run the named preparation step of
  ``tests/test_docs.py`` (``SETUPS``) in the working directory: state a reader would
  have by then but that no block shows how to make (a log with some traffic in it, a
  tampered copy).
* ``<!-- test: service NAME -->``: the block needs the real service ``NAME``
  (``postgres`` on 127.0.0.1:5432, ``nats`` on 127.0.0.1:4222); the case carries the
  ``service`` marker, so it is skipped with a reason, or fails under
  ``AUDITMW_REQUIRE_SERVICES=1``.

Directives may be combined in one comment, separated by ``;``, with ``fragment`` last.

How blocks run:

* All blocks of one document run in document order in one working directory, a copy
  of a prepared directory (see ``tests/test_docs.py``), so files a block writes are
  there for the blocks after it, as for a reader following the page.
  Python namespaces are not shared except through ``continue``.
* ``python`` blocks run as a script in a fresh interpreter; exit status 0 is required.
* ``pycon`` blocks run their ``>>>`` statements; a shown ``SomeError: …`` line means that
  exception must be raised.
* ``bash``/``sh``/``shell`` blocks run as one ``bash -e`` script; exit status 0 is required.
  Variables it exports stay set for the document's later blocks, as in the reader's shell.
* ``console`` blocks run each ``$ `` command (continuation lines joined) on its own.
  Output is compared loosely: a shown status line (one starting with an upper-case
  word such as ``PASS``, ``FAIL``, ``CLEAN:``, ``TAMPER``, ``NOT READY``) must appear in
  the real output by its first two words, and a shown line ending in an upper-case
  verdict (``…: VERIFIED``) must appear by that verdict; other output lines (times,
  ids, hashes) are ignored.  A command whose shown output reports a failure (a
  ``FAIL``/``TAMPER``/``FINDINGS``/``NOT …``/``refused`` line, or an ``error``/``auditmw CMD:``
  message) must exit non-zero; any other command must exit 0.
  A ``Traceback`` in the output is always a failure.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RUN_LANGS = {"python", "pycon", "bash", "sh", "shell", "console"}
FENCE = re.compile(r"^```([\w-]*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*test:\s*(.*?)\s*-->\s*$")
STATUS_LINE = re.compile(r"^([A-Z][A-Z_]+:?)\s+(\S+)")
VERDICT_END = re.compile(r":\s+([A-Z][A-Z ]+[A-Z])\s*$")
FAILURE_SHOWN = re.compile(
    r"^(FAIL|TAMPER|FINDINGS|NOT |UNVERIFIED|ERROR|refused)|\berror:|DETECTED$|^auditmw [\w-]+: |^usage: ",
    re.M,
)
TIMEOUT = 90.0


@dataclass
class Block:
    """One fenced block: where it is, its language, its text and its directives."""

    doc: str
    line: int
    lang: str
    text: str
    fragment: str | None = None
    cont: bool = False
    services: list[str] = field(default_factory=list)
    file: str | None = None
    setups: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The pytest id: ``file:line`` of the opening fence."""
        return f"{self.doc}:{self.line}"


@dataclass
class Outcome:
    """What running a block gave: ``ok`` and, when not, why."""

    ok: bool
    detail: str = ""


def _parse_directive(text: str, block: Block) -> None:
    head, _, reason = text.partition("fragment")
    if _:
        block.fragment = reason.strip().removeprefix("(").removesuffix(")") or "fragment"
    for part in (p.strip() for p in head.split(";")):
        if part == "continue":
            block.cont = True
        elif part.startswith("service "):
            block.services.append(part.split()[1])
        elif part.startswith("file "):
            block.file = part.split()[1]
        elif part.startswith("setup "):
            block.setups.append(part.split()[1])
        elif part:
            raise ValueError(f"{block.id}: unknown test directive {part!r}")


def extract(root: Path, doc: str) -> list[Block]:
    """Every runnable fenced block of ``doc`` (relative to ``root``), with its directives."""
    lines = (root / doc).read_text().split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match or not match.group(1):
            i += 1
            continue
        end = i + 1
        while not lines[end].startswith("```"):
            end += 1
        block = Block(doc, i + 1, match.group(1), "\n".join(lines[i + 1 : end]) + "\n")
        back = i - 1
        while back >= 0 and not lines[back].strip():
            back -= 1
        directive = DIRECTIVE.match(lines[back]) if back >= 0 else None
        if directive:
            _parse_directive(directive.group(1), block)
        if block.lang in RUN_LANGS or block.file:
            blocks.append(block)
        i = end + 1
    return blocks


def python_program(blocks: list[Block], index: int) -> str:
    """The program block ``index`` runs: itself, after the blocks it continues."""
    parts = [blocks[index].text]
    j = index
    while blocks[j].cont:
        j -= 1
        while blocks[j].lang != "python":
            j -= 1
        parts.insert(0, blocks[j].text)
    return "\n".join(parts)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    # A session of its own, so a timeout kills every process the block started.
    with subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return -1, f"timed out after {TIMEOUT:.0f} s"
    return proc.returncode, out


def _check_python(program: str, cwd: Path, env: dict[str, str]) -> Outcome:
    rc, out = _run([sys.executable, "-c", program], cwd, env)
    return Outcome(rc == 0, "" if rc == 0 else f"exit {rc}\n{out}")


def _check_pycon(text: str, program_before: str, cwd: Path, env: dict[str, str]) -> Outcome:
    statements, expected_error = [], None
    for line in text.splitlines():
        if line.startswith((">>> ", "... ")):
            statements.append(line[4:])
        elif match := re.match(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)):", line):
            expected_error = match.group(1)
    code = "\n".join(statements)
    if expected_error:
        code = (
            "try:\n" + "\n".join("    " + s for s in statements) + "\nexcept Exception as exc:\n"
            f"    assert type(exc).__name__ == {expected_error!r}, repr(exc)\n"
            f"else:\n    raise SystemExit('no {expected_error} raised')\n"
        )
    return _check_python(program_before + "\n" + code, cwd, env)


def _check_bash(text: str, cwd: Path, env: dict[str, str]) -> Outcome:
    exported = cwd / ".doc-env"
    rc, out = _run(["bash", "-e", "-o", "pipefail", "-c", f"{text}\nenv -0 > {exported}"], cwd, env)
    if rc != 0 or "Traceback" in out:
        return Outcome(False, f"exit {rc}\n{out}")
    names = set(re.findall(r"^\s*export\s+(\w+)=", text, re.M))
    for item in exported.read_text().split("\0"):
        name, _, value = item.partition("=")
        if name in names:
            env[name] = value  # the reader's shell keeps it for the page's later blocks
    exported.unlink()
    return Outcome(True)


def console_commands(text: str) -> list[tuple[str, list[str]]]:
    """The ``$ `` commands of a console block, each with the output lines shown after it."""
    commands: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.startswith("$ "):
            if commands:
                commands[-1][1].append(line)
            continue
        command = line[2:]
        while command.rstrip().endswith("\\") and i < len(lines):
            command = command.rstrip()[:-1] + " " + lines[i].strip()
            i += 1
        commands.append((command, []))
    return commands


def _expected_markers(shown: list[str]) -> list[str]:
    markers = []
    for line in shown:
        if line.strip() in ("...", "…"):
            continue
        if status := STATUS_LINE.match(line):
            markers.append(f"{status.group(1)} {status.group(2)}")
        elif verdict := VERDICT_END.search(line):
            markers.append(verdict.group(1))
    return markers


def _normalize(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def _check_console(text: str, cwd: Path, env: dict[str, str]) -> Outcome:
    problems = []
    for command, shown in console_commands(text):
        rc, out = _run(["bash", "-o", "pipefail", "-c", command], cwd, env)
        expect_failure = bool(FAILURE_SHOWN.search("\n".join(shown)))
        if "Traceback" in out or rc < 0 or (rc != 0) != expect_failure:
            wanted = "non-zero" if expect_failure else "0"
            problems.append(f"$ {command}\n  exit {rc}, expected {wanted}\n{out}")
            continue
        real = _normalize(out)
        missing = [m for m in _expected_markers(shown) if m not in real]
        if missing:
            problems.append(f"$ {command}\n  shown but not printed: {missing}\n{out}")
    return Outcome(not problems, "\n".join(problems))


Setup = Callable[[Path, dict[str, str]], None]


def run_document(
    blocks: list[Block], cwd: Path, env: dict[str, str], skip: set[str], setups: dict[str, Setup]
) -> dict[str, Outcome]:
    """Run a document's blocks in order in ``cwd``; ``skip`` holds ids not to run."""
    results: dict[str, Outcome] = {}
    env = dict(env)
    for index, block in enumerate(blocks):
        try:
            for name in block.setups:
                setups[name](cwd, env)
        except AssertionError as exc:
            results[block.id] = Outcome(False, f"setup failed: {exc}")
            continue
        if block.file:
            (cwd / block.file).write_text(block.text)
            results[block.id] = Outcome(True)
            continue
        if block.fragment or block.id in skip:
            if block.lang == "python":
                ast.parse(block.text)
            continue
        if block.lang == "python":
            outcome = _check_python(python_program(blocks, index), cwd, env)
        elif block.lang == "pycon":
            before = python_program(blocks, index - 1) if block.cont else ""
            outcome = _check_pycon(block.text, before, cwd, env)
        elif block.lang == "console":
            outcome = _check_console(block.text, cwd, env)
        else:
            outcome = _check_bash(block.text, cwd, env)
        results[block.id] = outcome
    return results


def doc_env(bin_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment blocks run in: this interpreter's ``bin`` first on ``PATH``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITMW_", "PYTEST_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env
