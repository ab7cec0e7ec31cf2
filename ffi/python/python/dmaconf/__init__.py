"""dmaconf for Python: write an implementation of the Linux two-step DMA API as a class and run
the conformance suite against it, in process (`dmaconf.run`), from pytest (`--dmaconf-impl`),
or isolated in a child process (`dmaconf run --impl py:pkg.mod:Class`, `dmaconf.serve`)."""

from .api import *  # noqa: F401,F403  (the constants and types are the package's API)
from .api import DmaImplementation, Facts, ImplementationError, IovaState, Platform, Region, SgEntry, check, load
from .results import Result, run

__version__ = "0.1.0"

__all__ = [
    "DmaImplementation",
    "Facts",
    "ImplementationError",
    "IovaState",
    "Platform",
    "Region",
    "Result",
    "SgEntry",
    "check",
    "load",
    "run",
]
