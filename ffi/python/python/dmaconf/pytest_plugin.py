"""The dmaconf pytest plugin (entry point `pytest11`): one test item per vector and profile.

    pytest --dmaconf-impl pkg.mod:Class [--dmaconf-profile semantic|linux|both]
           [--dmaconf-expectations FILE] [--dmaconf-root PATH] [-k link]

Items are named `VECTOR-ID[PROFILE]` under a `dmaconf` node, so `-k` selects by vector id (or
profile). The suite runs in process (`dmaconf.run`) once, for the selected items only, when the
first item runs. `pass` and `misuse` pass; `not_supported` is skipped with its reason; a failure
shows the CLI's diff; an expectations-file entry whose class still occurs is `xfail` (waived),
and one whose vector no longer fails that way fails as a stale expectation."""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Tuple

import pytest

from . import api
from .results import PROFILES, Result, find_vectors, run


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("dmaconf", "dmaconf conformance suite")
    group.addoption(
        "--dmaconf-impl",
        metavar="pkg.mod:Class",
        help="run the dmaconf suite against this implementation class",
    )
    group.addoption(
        "--dmaconf-profile",
        default="semantic",
        choices=("semantic", "linux", "both"),
        help="profile(s) to judge under (default: semantic)",
    )
    group.addoption(
        "--dmaconf-expectations",
        metavar="FILE",
        help="expectations (baseline) file: listed results are waived (xfail), stale ones fail",
    )
    group.addoption(
        "--dmaconf-root",
        metavar="PATH",
        help="repository (or vectors/ folder) holding the suite (default: found from the "
        "current directory, $DMACONF_ROOT, or the checkout the package was built from)",
    )


class DmaconfRun:
    """The one in-process run shared by every item of the session."""

    def __init__(self, config: Any, session: Any) -> None:
        self.config = config
        self.session = session
        self.spec: str = config.getoption("dmaconf_impl")
        chosen = config.getoption("dmaconf_profile")
        self.profiles = list(PROFILES) if chosen == "both" else [chosen]
        self.vectors_dir = find_vectors(config.getoption("dmaconf_root"))
        self.impl: Any = None
        self.problem: Optional[str] = None
        # `pytest` (unlike `python -m pytest`) does not put the current directory on sys.path.
        here = str(config.invocation_params.dir)
        if here not in sys.path:
            sys.path.insert(0, here)
        try:
            self.impl = api.load(self.spec)
            api.check(self.impl)
        except api.ImplementationError as e:
            self.problem = str(e)
        self.expectations: Optional[str] = None
        self.results: Optional[Dict[Tuple[str, str], Result]] = None

    def check_expectations(self) -> None:
        """Reads the expectations file with the engine's reader (that of `dmaconf run
        --expectations`): one that does not read, or names an unknown vector, stops the session."""
        path = self.config.getoption("dmaconf_expectations")
        if not path:
            return
        from . import _dmaconf

        problems = _dmaconf.check_expectations(path, str(self.vectors_dir))
        if problems:
            raise pytest.UsageError("--dmaconf-expectations:\n" + "\n".join(problems))
        self.expectations = path

    def result(self, vid: str, profile: str) -> Result:
        if self.results is None:
            # Only what survived -k / -m / deselection, in one run.
            selected = sorted({i.vid for i in self.session.items if isinstance(i, VectorItem)})
            rows = run(
                self.impl,
                vectors=selected,
                profile=self.profiles,
                root=self.vectors_dir,
                expectations=self.expectations,
            )
            self.results = {(r.id, r.profile): r for r in rows}
        return self.results[(vid, profile)]


class DmaconfFailure(Exception):
    """A vector that did not hold: the text is the CLI's report of it."""


class VectorItem(pytest.Item):
    def __init__(self, *, vid: str, profile: str, file: str, line: int, suite: DmaconfRun, **kw: Any) -> None:
        super().__init__(**kw)
        self.vid = vid
        self.profile = profile
        self.vfile = file
        self.vline = line
        self.suite = suite

    def runtest(self) -> None:
        r = self.suite.result(self.vid, self.profile)
        self.user_properties.append(("dmaconf_class", r.cls))
        if r.errors:
            raise DmaconfFailure(r.report())  # ends with the expectation errors
        if r.cls == "waived":
            pytest.xfail(f"waived ({r.waived})")
        if r.cls == "not_supported":
            # Reported at the vector (reportinfo), not at this line of the plugin.
            raise pytest.skip.Exception(r.reason or "not_supported", _use_item_location=True)
        if not r.ok:
            raise DmaconfFailure(r.report())

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        # The report is the whole story: no Python traceback of the plugin (also for xfail,
        # whose traceback pytest would otherwise format at length for every waived vector).
        if isinstance(excinfo.value, (DmaconfFailure, pytest.xfail.Exception)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> Tuple[str, Optional[int], str]:
        return self.vfile, self.vline - 1, f"{self.profile}::{self.vid}"


class ImplementationItem(pytest.Item):
    """A class that cannot be driven: one harness_error for the whole run."""

    def __init__(self, *, problem: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.problem = problem

    def runtest(self) -> None:
        raise DmaconfFailure(f"HARNESS_ERROR {self.problem}")

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        return str(excinfo.value)

    def reportinfo(self) -> Tuple[str, Optional[int], str]:
        return "dmaconf", None, "implementation check"


class Suite(pytest.Collector):
    def __init__(self, *, suite: DmaconfRun, **kw: Any) -> None:
        super().__init__(**kw)
        self.suite = suite

    def collect(self) -> List[Any]:
        s = self.suite
        if s.problem is not None:
            return [ImplementationItem.from_parent(self, name="implementation", problem=s.problem)]
        from . import _dmaconf

        vectors, errors = _dmaconf.list_vectors(str(s.vectors_dir))
        if errors:
            raise pytest.UsageError("the dmaconf suite has problems:\n" + "\n".join(errors))
        if not vectors:
            raise pytest.UsageError(f"no dmaconf vectors under {s.vectors_dir}")
        s.check_expectations()
        return [
            VectorItem.from_parent(self, name=f"{vid}[{p}]", vid=vid, profile=p, file=file, line=line, suite=s)
            for vid, file, line in vectors
            for p in s.profiles
        ]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: Any, config: Any, items: List[Any]) -> None:
    """Adds the suite's items before `-k` and `-m` deselect (they run after this hook)."""
    if not config.getoption("dmaconf_impl"):
        return
    suite = DmaconfRun(config, session)
    # Node ids are relative to the rootdir; this one reads `dmaconf::ID[PROFILE]` from where
    # pytest was started.
    here = os.path.relpath(config.invocation_params.dir / "dmaconf", config.rootpath)
    node = Suite.from_parent(session, name="dmaconf", nodeid=here.replace(os.sep, "/"), suite=suite)
    items.extend(node.collect())
