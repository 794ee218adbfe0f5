"""Specifier reasoning without an index: specifiers_disjoint must never claim a conflict
that some version would satisfy (sound), and must see the plain conflicts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import Specifier, SpecifierSet
from packaging.version import Version

from envbuild.resolve import specifiers_disjoint

_versions = st.builds(
    lambda rel, pre, post, dev, local: Version(
        ".".join(map(str, rel))
        + (f"rc{pre}" if pre is not None else "")
        + (f".post{post}" if post is not None else "")
        + (f".dev{dev}" if dev is not None else "")
        + (f"+{local}" if local else "")
    ),
    st.lists(st.integers(0, 3), min_size=1, max_size=3),
    st.none() | st.integers(0, 2),
    st.none() | st.integers(0, 1),
    st.none() | st.integers(0, 1),
    st.sampled_from(["", "cpu", "cu121"]),
)
_ops = st.sampled_from(["==", "!=", "<=", ">=", "<", ">", "~=", "==*", "!=*"])


@st.composite
def _specifier(draw: st.DrawFn) -> Specifier:
    op = draw(_ops)
    rel = draw(st.lists(st.integers(0, 3), min_size=2 if op == "~=" else 1, max_size=3))
    text = ".".join(map(str, rel))
    if op in ("==*", "!=*"):
        return Specifier(f"{op[:2]}{text}.*")
    if op in ("==", "!=", "<=", ">=", "<", ">") and draw(st.booleans()):
        text += draw(st.sampled_from(["rc1", ".post1", ".dev0", ""]))
    return Specifier(f"{op}{text}")


_sets = st.lists(_specifier(), min_size=1, max_size=3).map(
    lambda specs: SpecifierSet(",".join(str(s) for s in specs))
)


@settings(max_examples=400, deadline=None)
@given(a=_sets, b=_sets, versions=st.lists(_versions, min_size=1, max_size=20))
def test_disjoint_is_sound(a: SpecifierSet, b: SpecifierSet, versions: list[Version]) -> None:
    if specifiers_disjoint(a, b):
        for v in versions:
            assert not (a.contains(v, prereleases=True) and b.contains(v, prereleases=True)), (
                a,
                b,
                v,
            )


@settings(max_examples=200, deadline=None)
@given(a=_sets, b=_sets)
def test_disjoint_is_symmetric(a: SpecifierSet, b: SpecifierSet) -> None:
    assert specifiers_disjoint(a, b) == specifiers_disjoint(b, a)


@given(v=_versions)
def test_a_version_pinned_twice_is_never_disjoint(v: Version) -> None:
    spec = SpecifierSet(f"=={v}")
    assert not specifiers_disjoint(spec, spec)
    assert not specifiers_disjoint(spec, SpecifierSet(f">={v.public}"))


@pytest.mark.parametrize(
    ("a", "b", "disjoint"),
    [
        ("==1.9.1", "==1.3.0", True),
        ("==1.9.1", "==1.9.1", False),
        ("==2.13.0", "==2.13.0+cpu", False),
        (">=2", "<2", True),
        (">=2", "<=2", False),
        (">2", "<=2", True),
        ("~=1.4", ">=2", True),
        ("~=1.4.2", "==1.5", True),
        ("~=1.4.2", "==1.4.9", False),
        ("==1.2.*", "==1.3", True),
        ("==1.2.*", "==1.2.7", False),
        ("==1.0", "!=1.0", True),
        ("==1.2.3", "!=1.2.*", True),
        (">=1,<2", ">=1.5,<3", False),
        ("", "==1", False),
        ("===foo", "==1", False),
        # bounds alone miss these: every 1.x excluded, or <2 admitting no 2.0 pre-release
        ("==1.*", "!=1.*", True),
        (">=1.2,<1.3", "!=1.2.*", True),
        ("<2", ">=2.0rc1", True),
    ],
)
def test_disjoint_cases(a: str, b: str, disjoint: bool) -> None:
    assert specifiers_disjoint(SpecifierSet(a), SpecifierSet(b)) is disjoint
