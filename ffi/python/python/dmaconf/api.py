"""The line an implementation crosses, in Python: what it implements (`DmaImplementation`) and
what it may call (`Platform`). Names and numbers are those of `runner/platform` and
`spec/1-platform.md`; integers are Python ints (unsigned 64-bit values stay non-negative,
errors are negative errno values, as in Linux)."""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Protocol, Sequence, Tuple, runtime_checkable

# `enum dma_data_direction` (Linux numbering).
DMA_BIDIRECTIONAL = 0
DMA_TO_DEVICE = 1
DMA_FROM_DEVICE = 2
DMA_NONE = 3

# `DMA_ATTR_*` bits.
DMA_ATTR_WEAK_ORDERING = 1 << 1
DMA_ATTR_WRITE_COMBINE = 1 << 2
DMA_ATTR_NO_KERNEL_MAPPING = 1 << 4
DMA_ATTR_SKIP_CPU_SYNC = 1 << 5
DMA_ATTR_FORCE_CONTIGUOUS = 1 << 6
DMA_ATTR_ALLOC_SINGLE_PAGES = 1 << 7
DMA_ATTR_NO_WARN = 1 << 8
DMA_ATTR_PRIVILEGED = 1 << 9
DMA_ATTR_MMIO = 1 << 10
DMA_ATTR_DEBUGGING_IGNORE_CACHELINES = 1 << 11
DMA_ATTR_REQUIRE_COHERENT = 1 << 12
DMA_ATTR_CC_SHARED = 1 << 13

# `IOMMU_*` protection bits handed to `Platform.iommu_map`.
IOMMU_READ = 1 << 0
IOMMU_WRITE = 1 << 1
IOMMU_CACHE = 1 << 2
IOMMU_NOEXEC = 1 << 3
IOMMU_MMIO = 1 << 4
IOMMU_PRIV = 1 << 5

# errno values (positive; calls return their negatives).
EPERM = 1
EIO = 5
ENXIO = 6
ENOMEM = 12
EFAULT = 14
EEXIST = 17
EINVAL = 22
ERANGE = 34
EOVERFLOW = 75
EOPNOTSUPP = 95
EADDRINUSE = 98
EREMOTEIO = 121

DMA_MAPPING_ERROR = (1 << 64) - 1
DMA_IOVA_USE_SWIOTLB = 1 << 63

# `PlatformFacts.arch`, `.domain`, `.backend`.
ARCH_X86, ARCH_ARM64, ARCH_RISCV, ARCH_ARM = 0, 1, 2, 3
DOMAIN_NONE, DOMAIN_IDENTITY, DOMAIN_DMA, DOMAIN_DMA_FQ = 0, 1, 2, 3
BACKEND_IOMMUPT, BACKEND_IO_PGTABLE_ARM = 0, 1

# `Region.kind`.
REGION_PCI_WINDOW, REGION_DMA_RANGE_GAP, REGION_MSI, REGION_RESERVED, REGION_DIRECT = 0, 1, 2, 3, 4

# `enum pci_p2pdma_map_type`, answered by `Platform.p2p_type`.
P2P_UNKNOWN, P2P_NONE, P2P_NOT_SUPPORTED, P2P_BUS_ADDR, P2P_THRU_HOST_BRIDGE = 0, 1, 2, 3, 4

# `SgEntry.flags`: `SG_DMA_BUS_ADDRESS` (the entry's address is a P2P bus address) and
# `SG_DMA_SWIOTLB` (the entry was bounced).
SG_DMA_BUS_ADDRESS = 1 << 0
SG_DMA_SWIOTLB = 1 << 1

# WARN codes of spec/2-outcomes.md, for `Platform.warn`.
WARN_CODES = {
    "try_alloc_zero_size": 1,
    "try_alloc_size_flag_bit": 2,
    "link_unaligned_at_offset": 3,
    "link_coherent_after_bounce": 4,
    "unlink_short_unmap": 5,
    "unlink_untranslated": 6,
    "map_no_access": 7,
    "map_unaligned": 8,
    "stream_min_align_unsupported": 9,
    "stream_unmap_untranslated": 10,
    "stream_unmap_short": 11,
    "direct_overflow": 12,
    # Raised by the machine's page table (io-pgtable-arm); an implementation has no reason to.
    "map_exists": 13,
    "map_out_of_range": 14,
    "unmap_missing": 15,
    "unmap_partial_leaf": 16,
}

# Capabilities an implementation may declare (spec/INTERPRETING.md § "Capabilities"); the
# platform-side ones are the runner's and are ignored here.
IMPLEMENTATION_CAPABILITIES = ("iova_api", "streaming", "sg", "linux_exact")
PLATFORM_CAPABILITIES = ("fixed_phys", "noncoherent", "swiotlb_pool", "cpu_cache_model", "p2p")


class IovaState:
    """The caller's `struct dma_iova_state`: `addr`, and `size` with the SWIOTLB flag in bit 63
    (spec/3.0-state.md). The implementation fills it in `iova_try_alloc` and `iova_link`."""

    __slots__ = ("addr", "size")

    def __init__(self, addr: int = 0, size: int = 0) -> None:
        self.addr = addr
        self.size = size

    def __repr__(self) -> str:
        return f"IovaState(addr={self.addr:#x}, size={self.size:#x})"


def dma_use_iova(state: IovaState) -> bool:
    """STATE-02: the state holds an IOVA allocation (any bit of the size word)."""
    return state.size != 0


def dma_iova_size(state: IovaState) -> int:
    """STATE-03: the size without the SWIOTLB flag."""
    return state.size & ~DMA_IOVA_USE_SWIOTLB


class SgEntry:
    """One scatterlist entry: the caller's `phys`/`len`, and the `dma_address`/`dma_len`/`flags`
    the implementation writes (`map_sg` writes its DMA segments at the front of the list)."""

    __slots__ = ("phys", "len", "dma_address", "dma_len", "flags")

    def __init__(self, phys: int, len: int, dma_address: int = 0, dma_len: int = 0, flags: int = 0) -> None:
        self.phys = phys
        self.len = len
        self.dma_address = dma_address
        self.dma_len = dma_len
        self.flags = flags

    def __repr__(self) -> str:
        return (
            f"SgEntry(phys={self.phys:#x}, len={self.len:#x}, dma_address={self.dma_address:#x}, "
            f"dma_len={self.dma_len:#x}, flags={self.flags})"
        )


@dataclasses.dataclass(frozen=True)
class Facts:
    """`PlatformFacts` (spec/1-platform.md): read-only facts of the device and its domain."""

    arch: int
    domain: int
    backend: int
    pgsize_bitmap: int
    aperture_start: int
    aperture_end: int
    force_aperture: bool
    coherent: bool
    untrusted: bool
    pci: bool
    forcedac: bool
    dma_mask: int
    bus_dma_limit: int
    min_align_mask: int
    cache_line: int
    swiotlb: bool
    kmalloc_bounce: bool
    iommu_dma_config: bool
    nr_cpus: int
    msi_doorbell: int
    max_seg_size: int
    seg_boundary_mask: int
    swiotlb_force: bool
    dma_offset: int
    write_only_pte: bool

    @property
    def granule(self) -> int:
        """The IOMMU granule: the smallest page size of `pgsize_bitmap` (0 without one)."""
        b = self.pgsize_bitmap
        return b & -b


FACT_FIELDS = tuple(f.name for f in dataclasses.fields(Facts))


@dataclasses.dataclass(frozen=True)
class Region:
    """A reserved IOVA region of the device, inclusive bounds; `kind` is a `REGION_*` number."""

    start: int
    end: int
    kind: int


class Platform(Protocol):
    """What an implementation may call: the machine's services (spec/1-platform.md). Every
    effect is recorded by the runner's machine, not by the implementation."""

    @property
    def facts(self) -> Facts: ...
    def reserved_regions(self) -> List[Region]: ...
    def current_cpu(self) -> int: ...
    def now_ns(self) -> int: ...
    def iommu_map(self, iova: int, phys: int, len: int, prot: int) -> int: ...
    def iotlb_sync_map(self, iova: int, len: int) -> int: ...
    def iommu_unmap(self, iova: int, len: int) -> int: ...
    def iotlb_sync(self, iova: int, len: int) -> None: ...
    def flush_iotlb_all(self) -> None: ...
    def iova_to_phys(self, iova: int) -> int: ...
    def sync_for_device(self, phys: int, len: int, dir: int) -> None: ...
    def sync_for_cpu(self, phys: int, len: int, dir: int) -> None: ...
    def sync_barrier(self) -> None: ...
    def bounce_alloc(self, orig: int, len: int, alloc_align_mask: int, min_align_mask: int) -> Tuple[int, int]:
        """`(0, slot)` on success, `(-errno, 0)` when no slot fits."""
        ...
    def bounce_free(self, slot: int, len: int) -> None: ...
    def is_bounce(self, phys: int) -> bool: ...
    def bounce_orig(self, phys: int) -> int: ...
    def copy(self, dst: int, src: int, len: int) -> None: ...
    def fill(self, dst: int, byte: int, len: int) -> None: ...
    def p2p_type(self, phys: int) -> int: ...
    def p2p_bus_offset(self, phys: int) -> int: ...
    def warn(self, code: str) -> None:
        """A WARN-class diagnostic; `code` is a key of `WARN_CODES`."""
        ...


@runtime_checkable
class DmaImplementation(Protocol):
    """What an implementation provides: one instance serves one device for one vector, made by
    calling the class with no arguments. The class declares `capabilities` (a subset of
    `IMPLEMENTATION_CAPABILITIES`, `iova_api` at least) and may declare `name` and `version`.

    The two-step calls are required. The streaming calls (capability `streaming`: `map_phys`,
    `unmap_phys`, `sync_single_for_cpu`, `sync_single_for_device`, `need_unmap`, `need_sync`,
    `advance_time`; optional `map_page_attrs`, `unmap_page_attrs`, `map_resource`,
    `unmap_resource`) and `map_sg` / `unmap_sg` (capability `sg`) are required only when declared.
    Raising `NotImplementedError` reports the vector as `not_supported`."""

    capabilities: Sequence[str]

    def probe(self, platform: Platform) -> int: ...
    def iova_try_alloc(self, platform: Platform, state: IovaState, phys: int, size: int) -> bool: ...
    def iova_link(
        self, platform: Platform, state: IovaState, phys: int, offset: int, size: int, dir: int, attrs: int
    ) -> int: ...
    def iova_sync(self, platform: Platform, state: IovaState, offset: int, size: int) -> int: ...
    def iova_unlink(
        self, platform: Platform, state: IovaState, offset: int, size: int, dir: int, attrs: int
    ) -> None: ...
    def iova_destroy(self, platform: Platform, state: IovaState, mapped_len: int, dir: int, attrs: int) -> None: ...
    def iova_free(self, platform: Platform, state: IovaState) -> None: ...


# Required methods per capability, for the up-front check.
REQUIRED = {
    "iova_api": (
        "probe",
        "iova_try_alloc",
        "iova_link",
        "iova_sync",
        "iova_unlink",
        "iova_destroy",
        "iova_free",
    ),
    "streaming": (
        "map_phys",
        "unmap_phys",
        "sync_single_for_cpu",
        "sync_single_for_device",
        "need_unmap",
        "need_sync",
    ),
    "sg": ("map_sg", "unmap_sg"),
    "linux_exact": (),
}


class ImplementationError(TypeError):
    """The implementation cannot be driven at all (a missing method, undeclared or unknown
    capabilities, a class that cannot be imported or instantiated): one clear `harness_error`
    for the whole run, raised before any vector."""


def check(impl: object) -> Tuple[str, List[str]]:
    """Checks an implementation class (or factory) once, up front. Returns its name and declared
    capabilities; raises `ImplementationError` naming everything that is wrong."""
    if not callable(impl):
        raise ImplementationError(
            f"{impl!r} is not a class: dmaconf needs a class (or a factory) it can call with no "
            "arguments to make one implementation per device"
        )
    name = getattr(impl, "name", None) or getattr(impl, "__qualname__", None) or repr(impl)
    if not isinstance(name, str):
        raise ImplementationError(f"{impl!r}: `name` must be a string, not {type(name).__name__}")
    caps = getattr(impl, "capabilities", None)
    problems: List[str] = []
    if caps is None:
        raise ImplementationError(
            f"{name}: declares no `capabilities` (a class attribute such as "
            "`capabilities = (\"iova_api\",)`; known: " + ", ".join(IMPLEMENTATION_CAPABILITIES) + ")"
        )
    if isinstance(caps, str) or not all(isinstance(c, str) for c in caps):
        raise ImplementationError(f"{name}: `capabilities` must be a sequence of strings, not {caps!r}")
    caps = list(caps)
    unknown = [c for c in caps if c not in IMPLEMENTATION_CAPABILITIES and c not in PLATFORM_CAPABILITIES]
    if unknown:
        problems.append(
            "unknown capabilities " + ", ".join(unknown) + " (known: " + ", ".join(IMPLEMENTATION_CAPABILITIES) + ")"
        )
    if "iova_api" not in caps:
        problems.append("`capabilities` must include iova_api (the two-step calls)")
    for cap in caps:
        missing = [f"{m}()" for m in REQUIRED.get(cap, ()) if not callable(getattr(impl, m, None))]
        if missing:
            problems.append(f"declares {cap} but lacks " + ", ".join(missing))
    if problems:
        raise ImplementationError(f"{name}: " + "; ".join(problems))
    return name, [c for c in caps if c in IMPLEMENTATION_CAPABILITIES]


def load(spec: str) -> object:
    """Imports `pkg.mod:Class` (the form `--dmaconf-impl` and `--impl py:` take)."""
    import importlib

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ImplementationError(f"`{spec}` is not of the form pkg.mod:Class")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # any import failure is the implementation's, reported once
        raise ImplementationError(f"cannot import {module_name}: {type(e).__name__}: {e}") from e
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImplementationError(f"{module_name} has no attribute {attr}") from None
    return obj
