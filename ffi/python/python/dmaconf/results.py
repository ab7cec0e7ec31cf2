"""`dmaconf.run`: the suite in process, with a Python class as the implementation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from . import api

PROFILES = ("semantic", "linux")


class Result:
    """One vector's result under one profile: `id`, `profile`, `cls` (the result class of
    spec/2-outcomes.md: pass, fail, not_supported, misuse, crash, timeout, harness_error,
    waived), `reason`, `diff` (expected/actual per mismatch, with line diffs), `trace` (the full
    trace as the CLI's JSON report has it: per preset, each step's return value, state, events and
    observations), where the vector is (`file`, `line`), and with an expectations file:
    `waived` ("FILE:LINE: reason" of the entry that waived it) and `errors` (a stale or wrong
    entry for this vector, which makes the result not ok)."""

    __slots__ = ("id", "profile", "cls", "reason", "diff", "file", "line", "_trace", "waived", "errors")

    def __init__(
        self,
        id: str,
        profile: str,
        cls: str,
        reason: Optional[str],
        diff: str,
        trace: Optional[str],
        file: str,
        line: int,
        waived: Optional[str] = None,
        errors: Sequence[str] = (),
    ) -> None:
        self.id = id
        self.profile = profile
        self.cls = cls
        self.reason = reason
        self.diff = diff
        self.file = file
        self.line = line
        self._trace = trace
        self.waived = waived
        self.errors = list(errors)

    @property
    def trace(self) -> Optional[Dict[str, Any]]:
        return None if self._trace is None else json.loads(self._trace)

    @property
    def ok(self) -> bool:
        """Not a failure: pass, not_supported, misuse or waived (spec/2-outcomes.md), and no
        expectation error."""
        return self.cls in ("pass", "not_supported", "misuse", "waived") and not self.errors

    def report(self) -> str:
        """The failure text the CLI prints for this result."""
        lines = [f"{self.cls.upper()} {self.profile}::{self.id} ({self.file}:{self.line})"]
        if self.reason:
            lines.append(f"    {self.reason}")
        lines.extend("    " + line for line in self.diff.splitlines())
        if self.waived:
            lines.append(f"    waived by {self.waived}")
        lines.extend(f"    error: {e}" for e in self.errors)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Result({self.profile}::{self.id}: {self.cls})"


def find_vectors(root: Union[str, os.PathLike, None] = None) -> Path:
    """The suite's `vectors/`: `root` (the repository or its `vectors/`), else `$DMACONF_ROOT`,
    else the nearest ancestor of the current directory holding `spec/` and `vectors/`, else the
    repository the extension was built from."""
    if root is None and os.environ.get("DMACONF_ROOT"):
        root = os.environ["DMACONF_ROOT"]
    if root is not None:
        p = Path(root)
        return p / "vectors" if (p / "vectors").is_dir() else p
    here = Path.cwd()
    for d in [here, *here.parents]:
        if (d / "spec").is_dir() and (d / "vectors").is_dir():
            return d / "vectors"
    from . import _dmaconf

    return Path(_dmaconf.built_from()).resolve() / "vectors"


def run(
    impl: Any,
    vectors: Union[str, Sequence[str], None] = None,
    profile: Union[str, Sequence[str]] = "semantic",
    root: Union[str, os.PathLike, None] = None,
    trace: bool = True,
    expectations: Union[str, os.PathLike, None] = None,
) -> List[Result]:
    """Runs the suite in process against `impl`, a class (or factory) called with no arguments
    for each device, with the `api.DmaImplementation` methods and `capabilities`.

    `vectors`: vector-id globs to select (`"link-*"`; default: all). `profile`: `semantic`,
    `linux`, or both as a list. `root`: where the suite is (see `find_vectors`).
    `expectations`: a file of known results, applied as `dmaconf run --expectations` does (a
    listed result is `waived`; a stale entry is an error on its result; a file that does not
    read or names an unknown vector raises `ValueError` naming file:line).

    The implementation is checked once first: a missing method or undeclared capability raises
    `ImplementationError` (one harness_error for the run, not one per vector). Returns one
    `Result` per vector and profile, in suite order."""
    name, caps = api.check(impl)
    profiles = [profile] if isinstance(profile, str) else list(profile)
    for p in profiles:
        if p not in PROFILES:
            raise ValueError(f"unknown profile `{p}` ({', '.join(PROFILES)})")
    ids = [vectors] if isinstance(vectors, str) else list(vectors or [])
    from . import _dmaconf

    path = None if expectations is None else str(expectations)
    rows, errors = _dmaconf.run_suite_py(impl, name, caps, str(find_vectors(root)), profiles, ids, trace, path)
    if errors:
        raise RuntimeError("the suite has problems outside any vector:\n" + "\n".join(errors))
    return [Result(*row) for row in rows]


def summary(results: Iterable[Result]) -> Dict[str, Dict[str, int]]:
    """Counts per profile and result class."""
    out: Dict[str, Dict[str, int]] = {}
    for r in results:
        counts = out.setdefault(r.profile, {})
        counts[r.cls] = counts.get(r.cls, 0) + 1
    return out
