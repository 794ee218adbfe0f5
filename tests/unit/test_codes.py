"""Every code the package can emit is documented, once, in the README's table."""

from __future__ import annotations

import re

from envbuild.codes import all_codes, markdown_table
from tests.helpers import ROOT


def test_every_emitted_code_is_documented() -> None:
    used = set()
    for path in (ROOT / "envbuild").rglob("*.py"):
        used |= set(re.findall(r'"(EB\d{3})"', path.read_text()))
    used.discard("EB000")  # the base class's placeholder, never raised as such
    assert sorted(used - set(all_codes())) == []
    assert sorted(set(all_codes()) - used) == []


def test_readme_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "run: python -m envbuild.codes, and paste into README.md"
