"""requirements.txt and constraints.txt: pip's line format, following -r/-c inside the
model folder. Readers collect every problem in a file before raising."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PkgRequirement

from envbuild._paths import inside, relative_to
from envbuild._redact import redact
from envbuild.codes import EB110, EB111
from envbuild.errors import InputError
from envbuild.findings import Finding, Location
from envbuild.read._common import read_in
from envbuild.read.env import PipOption, ReqKind, Requirement

_OPTIONS_WITH_VALUE = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
    "--no-binary": "--no-binary",
    "--only-binary": "--only-binary",
    "-r": "-r",
    "--requirement": "-r",
    "-c": "-c",
    "--constraint": "-c",
    "-e": "-e",
    "--editable": "-e",
    "--hash": "--hash",
    "--config-settings": "--config-settings",
}
_FLAG_OPTIONS = {"--pre", "--no-index", "--prefer-binary", "--require-hashes", "--use-feature"}
_ARCHIVE = re.compile(r"\.(whl|tar\.gz|tgz|zip|tar\.bz2)$", re.IGNORECASE)
_VCS = re.compile(r"^(git|hg|svn|bzr)\+", re.IGNORECASE)
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Join backslash continuations, strip comments; yield (first line number, text)."""
    buf = ""
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        stripped = re.sub(r"(^|\s+)#.*$", "", buf).strip()
        buf = ""
        if stripped:
            yield start, stripped
    if buf.strip():
        yield start, re.sub(r"(^|\s+)#.*$", "", buf).strip()


@dataclass(frozen=True)
class ParsedLine:
    requirement: Requirement | None = None
    option: PipOption | None = None
    problem: Finding | None = None


def parse_line(text: str, location: Location) -> ParsedLine:
    """Parse one requirements line (pip's file format) into a requirement or an option."""
    text = text.strip()
    if text.startswith("-"):
        head, _, rest = text.partition(" ")
        if "=" in head and head.startswith("--"):
            head, _, eq_value = head.partition("=")
            rest = (eq_value + " " + rest).strip()
        rest = rest.strip()
        if head in _FLAG_OPTIONS:
            return ParsedLine(option=PipOption(option=head, value=rest or None, location=location))
        if head in _OPTIONS_WITH_VALUE:
            option = _OPTIONS_WITH_VALUE[head]
            if not rest:
                return ParsedLine(problem=_bad_line(text, location, f"option {head} needs a value"))
            if option == "-e":
                return ParsedLine(
                    requirement=Requirement(
                        raw=text,
                        kind=ReqKind.EDITABLE,
                        requirement=_name_from_url(rest),
                        location=location,
                    )
                )
            return ParsedLine(option=PipOption(option=option, value=rest, location=location))
        return ParsedLine(problem=_bad_line(text, location, f"unknown option {head}"))
    # strip per-requirement options such as --hash=sha256:...
    req_text = re.split(r"\s+--", text, maxsplit=1)[0].strip()
    if _VCS.match(req_text):
        return ParsedLine(
            requirement=Requirement(
                raw=text, kind=ReqKind.VCS, requirement=_name_from_url(req_text), location=location
            )
        )
    if _URL.match(req_text):
        return ParsedLine(
            requirement=Requirement(
                raw=text, kind=ReqKind.URL, requirement=_name_from_url(req_text), location=location
            )
        )
    if req_text.startswith((".", "/", "~")) or (
        _ARCHIVE.search(req_text) and not re.match(r"^[A-Za-z0-9._-]+\s*@", req_text)
    ):
        return ParsedLine(
            requirement=Requirement(
                raw=text, kind=ReqKind.PATH, requirement=None, location=location
            )
        )
    try:
        parsed = PkgRequirement(req_text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        return ParsedLine(problem=_bad_line(text, location, reason))
    empty = [str(s) for s in parsed.specifier if not s.version.strip()]
    if empty:
        return ParsedLine(
            problem=_bad_line(text, location, f"specifier {empty[0]!r} has no version")
        )
    return ParsedLine(
        requirement=Requirement(
            raw=req_text, kind=ReqKind.NAMED, requirement=parsed, location=location
        )
    )


def _name_from_url(url: str) -> PkgRequirement | None:
    match = re.search(r"#egg=([A-Za-z0-9._-]+)", url)
    if match:
        try:
            return PkgRequirement(match.group(1))
        except InvalidRequirement:
            return None
    wheel = re.search(r"([A-Za-z0-9_.]+)-([0-9][^-/]*)(-[^/]*)?\.whl$", url)
    if wheel:
        try:
            return PkgRequirement(f"{wheel.group(1)}=={wheel.group(2)}")
        except InvalidRequirement:
            return None
    return None


def _bad_line(text: str, location: Location, reason: str) -> Finding:
    return EB110.at(
        location,
        f"invalid requirement {redact(text)!r}: {reason}",
        hint="write a PEP 508 requirement such as 'numpy>=1.24,<2' or a pip option line",
    )


@dataclass(frozen=True, kw_only=True)
class RequirementsFile:
    file: str
    requirements: tuple[Requirement, ...]
    constraints: tuple[Requirement, ...]
    options: tuple[PipOption, ...]
    problems: tuple[Finding, ...]


def read_requirements(
    root: Path,
    relative: str,
    *,
    location: Location | None = None,
    _seen: frozenset[str] = frozenset(),
) -> RequirementsFile:
    """Read a requirements file inside ``root``, following ``-r``/``-c`` inside ``root``."""
    path, rel, text = read_in(
        root, relative, location, hint="add the file or remove the reference to it"
    )
    return parse_requirements_text(text, file=rel, root=root, base=path.parent, seen=_seen | {rel})


def parse_requirements_text(
    text: str,
    *,
    file: str,
    root: Path | None = None,
    base: Path | None = None,
    seen: frozenset[str] = frozenset(),
    field_prefix: Sequence[str | int] = (),
    line_of: Sequence[int | None] | None = None,
) -> RequirementsFile:
    reqs: list[Requirement] = []
    cons: list[Requirement] = []
    opts: list[PipOption] = []
    problems: list[Finding] = []
    for line_no, line in _logical_lines(text):
        loc = Location(file=file, line=line_no)
        parsed = parse_line(line, loc)
        if parsed.problem:
            problems.append(parsed.problem)
        elif parsed.requirement:
            reqs.append(parsed.requirement)
        elif parsed.option:
            opt = parsed.option
            if opt.option in ("-r", "-c") and opt.value and root is not None and base is not None:
                nested = _nested(root, base, opt, seen)
                if isinstance(nested, Finding):
                    problems.append(nested)
                    continue
                if nested is None:
                    continue
                if opt.option == "-r":
                    reqs.extend(nested.requirements)
                    cons.extend(nested.constraints)
                else:
                    cons.extend(nested.requirements)
                    cons.extend(nested.constraints)
                opts.extend(nested.options)
                problems.extend(nested.problems)
            else:
                opts.append(opt)
    return RequirementsFile(
        file=file,
        requirements=tuple(reqs),
        constraints=tuple(cons),
        options=tuple(opts),
        problems=tuple(problems),
    )


def _nested(
    root: Path, base: Path, opt: PipOption, seen: frozenset[str]
) -> RequirementsFile | Finding | None:
    assert opt.value is not None
    if _URL.match(opt.value):
        return EB111.at(
            opt.location,
            f"{opt.option} {redact(opt.value)}: remote requirement files are not read",
            hint="copy the file into the model folder and reference it by relative path",
        )
    try:
        target = inside(base, opt.value, location=opt.location)
        inside(root, relative_to(root, target), location=opt.location)
    except InputError as exc:
        return exc.problems[0]
    rel = relative_to(root, target)
    if rel in seen:
        return None  # include cycle: already read
    try:
        return read_requirements(root, rel, location=opt.location, _seen=seen)
    except InputError as exc:
        return exc.problems[0]
