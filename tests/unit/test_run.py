"""The one subprocess runner: output captured, a timeout, a missing program and the
stderr tail all come back as values, never as exceptions."""

from __future__ import annotations

import sys

from envbuild._adapters.run import run


def test_output_and_the_stderr_tail() -> None:
    script = "import sys; print('out'); sys.stderr.write('a\\n\\nb\\nc\\n'); sys.exit(3)"
    done = run([sys.executable, "-c", script])
    assert (done.returncode, done.ok, done.stdout) == (3, False, "out\n")
    assert done.tail(2) == ["b", "c"] and done.tail() == ["a", "b", "c"]


def test_a_missing_program_and_a_timeout_are_values() -> None:
    missing = run(["/nonexistent/envbuild-tool", "--version"])
    assert missing.returncode == -1 and not missing.ok and "nonexistent" in missing.stderr
    slow = run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert slow.timed_out and slow.returncode == -1 and "timed out" in slow.stderr
