"""A DMA layer for dmaconf written in Python from spec/ alone: the two-step IOVA API
(spec/3.*), the streaming API beside it (spec/6-streaming.md) and scatterlists.

It keeps the contract of the `semantic` profile with a deliberately simple IOVA allocator: a
sorted list of used ranges, searched top-down for the highest block aligned to the request's
power-of-two size (falling back to granule alignment), instead of Linux's rbtree, rcache and
32-bit-first policy (chapter 4). Unmaps are strict on lazy domains too (no flush queue,
STREAM-04 is `linux` only). Its differences from Linux under the `linux` profile are listed in
`simple_dma.expectations.yaml` beside this file.

Run it:  python -m pytest --dmaconf-impl simple_dma:SimpleDma   (with this folder on sys.path)
         dmaconf run --impl py:simple_dma:SimpleDma
"""

from __future__ import annotations

import bisect
from typing import List, Optional, Tuple

from dmaconf.api import (
    ARCH_ARM64,
    DMA_ATTR_CC_SHARED,
    DMA_ATTR_MMIO,
    DMA_ATTR_PRIVILEGED,
    DMA_ATTR_REQUIRE_COHERENT,
    DMA_ATTR_SKIP_CPU_SYNC,
    DMA_BIDIRECTIONAL,
    DMA_FROM_DEVICE,
    DMA_IOVA_USE_SWIOTLB,
    DMA_MAPPING_ERROR,
    DMA_TO_DEVICE,
    DOMAIN_DMA,
    DOMAIN_DMA_FQ,
    EINVAL,
    EIO,
    ENOMEM,
    EOPNOTSUPP,
    EPERM,
    EREMOTEIO,
    IOMMU_CACHE,
    IOMMU_MMIO,
    IOMMU_NOEXEC,
    IOMMU_PRIV,
    IOMMU_READ,
    IOMMU_WRITE,
    P2P_BUS_ADDR,
    P2P_NONE,
    P2P_THRU_HOST_BRIDGE,
    REGION_DMA_RANGE_GAP,
    REGION_PCI_WINDOW,
    SG_DMA_BUS_ADDRESS,
    IovaState,
    Platform,
    SgEntry,
)

U64 = (1 << 64) - 1


def _min_not_zero(a: int, b: int) -> int:
    if a == 0:
        return b
    if b == 0:
        return a
    return min(a, b)


def _pow2_at_least(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


class Space:
    """The IOVA space of one device: used ranges `[start, end)` kept sorted and disjoint
    (reserved regions, reservations, streaming mappings, the MSI granule)."""

    def __init__(self) -> None:
        self.starts: List[int] = []
        self.ends: List[int] = []

    def take(self, start: int, end: int) -> None:
        """Marks `[start, end)` used, merging with what it touches (reserved regions only)."""
        i = bisect.bisect_left(self.ends, start)
        while i < len(self.starts) and self.starts[i] <= end:
            start = min(start, self.starts[i])
            end = max(end, self.ends[i])
            del self.starts[i]
            del self.ends[i]
        self.starts.insert(i, start)
        self.ends.insert(i, end)

    def insert(self, start: int, end: int) -> None:
        """Records one allocation (never merged, so it can be given back exactly)."""
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)

    def give_back(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.starts, start)
        if i < len(self.starts) and self.starts[i] == start and self.ends[i] == end:
            del self.starts[i]
            del self.ends[i]
            return True
        return False

    def find(self, length: int, lo: int, hi: int, align: int) -> Optional[int]:
        """The highest `align`-aligned start B with `[B, B + length)` free inside `[lo, hi]`."""
        top = hi + 1  # exclusive end of the free run being examined
        i = bisect.bisect_left(self.starts, top)
        # Walk the free runs from the top: between used range i-1 and the current top.
        while top > lo:
            prev_end = self.ends[i - 1] if i > 0 else 0
            run_lo = max(prev_end, lo)
            if top - run_lo >= length:
                b = (top - length) & ~(align - 1)
                if b >= run_lo:
                    return b
            if i == 0:
                return None
            top = min(top, self.starts[i - 1])
            i -= 1
        return None


class SimpleDma:
    """One instance per device (dmaconf makes one per vector and preset)."""

    name = "simple-dma"
    version = "0.1.0"
    capabilities = ("iova_api", "streaming", "sg")

    def __init__(self) -> None:
        self.space = Space()
        self.streaming: dict = {}  # streaming IOVA base -> length
        self.bounced_ever = False  # STREAM-06: the first bounce clears the skip-sync flag

    # -- facts -----------------------------------------------------------------------------
    def probe(self, p: Platform) -> int:
        f = p.facts
        self.f = f
        self.G = f.granule
        self.iommu = f.iommu_dma_config and f.domain in (DOMAIN_DMA, DOMAIN_DMA_FQ)
        limit = _min_not_zero(f.dma_mask, f.bus_dma_limit)
        self.direct_limit = limit
        if f.force_aperture:
            limit = min(limit, f.aperture_end)
        self.limit = limit
        if not self.iommu:
            return 0
        G = self.G
        self.lo = max(G, f.aperture_start & ~(G - 1))
        # IOVA-05 / TRYALLOC-07 item 5: reserved regions, widened to whole granules; host
        # bridge windows and dma-range gaps only for PCI devices.
        for r in p.reserved_regions():
            if r.kind in (REGION_PCI_WINDOW, REGION_DMA_RANGE_GAP) and not f.pci:
                continue
            start = r.start & ~(G - 1)
            end = min((r.end | (G - 1)) + 1, 1 << 64)
            self.space.take(start, end)
        # IOVA-06: one granule of our own for the MSI doorbell, mapped for the domain's life.
        if f.msi_doorbell:
            iova = self._alloc(G)
            if iova is not None:
                ret = p.iommu_map(iova, f.msi_doorbell & ~(G - 1), G, IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO)
                if ret == 0:
                    p.iotlb_sync_map(iova, G)
                else:
                    self.space.give_back(iova, iova + G)
        return 0

    def _align(self, x: int) -> int:
        return (x + self.G - 1) & ~(self.G - 1)

    def _alloc(self, length: int) -> Optional[int]:
        """TRYALLOC-07/08: highest free block under the limit, power-of-two aligned when that
        fits (so a free run of twice the size always succeeds), else granule aligned."""
        if length == 0 or length > 1 << 64:
            return None
        for align in (max(_pow2_at_least(length), self.G), self.G):
            b = self.space.find(length, self.lo, self.limit, align)
            if b is not None:
                self.space.insert(b, b + length)
                return b
        return None

    def _cache(self, attrs: int) -> bool:
        """CPU cache maintenance applies: non-coherent, neither SKIP_CPU_SYNC nor MMIO."""
        return not self.f.coherent and not attrs & (DMA_ATTR_SKIP_CPU_SYNC | DMA_ATTR_MMIO)

    def _prot(self, dir: int, attrs: int) -> int:
        """PROT-01 / PROT-02."""
        bits = {DMA_BIDIRECTIONAL: IOMMU_READ | IOMMU_WRITE, DMA_TO_DEVICE: IOMMU_READ, DMA_FROM_DEVICE: IOMMU_WRITE}
        if dir not in bits:
            return 0
        prot = IOMMU_MMIO if attrs & DMA_ATTR_MMIO else IOMMU_CACHE if self.f.coherent else 0
        if attrs & DMA_ATTR_PRIVILEGED:
            prot |= IOMMU_PRIV
        return prot | bits[dir]

    def _kmalloc_rule(self, size: int, dir: int) -> bool:
        """LINK-04's kmalloc rule: small non-coherent buffers whose kmalloc size class is not a
        multiple of the cache line."""
        f = self.f
        if not f.kmalloc_bounce or f.coherent or dir == DMA_TO_DEVICE or not f.swiotlb:
            return False
        minalign = 128 if f.arch == ARCH_ARM64 else 64
        if size >= 2 * minalign:
            return False
        rounded = 0 if size == 0 else next(c for c in (8, 16, 32, 64, 96, 128, 192, 256) if c >= size)
        return rounded % f.cache_line != 0

    def _would_bounce(self, phys: int, size: int, dir: int) -> bool:
        return (self.f.untrusted or self._kmalloc_rule(size, dir)) and (phys | size) & (self.G - 1) != 0

    # -- the two-step API ------------------------------------------------------------------
    def iova_try_alloc(self, p: Platform, state: IovaState, phys: int, size: int) -> bool:
        if not self.f.iommu_dma_config:
            return False  # TRYALLOC-03: the stub leaves the state alone
        state.addr = 0  # TRYALLOC-01
        state.size = 0
        if not self.iommu:
            return False  # TRYALLOC-02
        if size == 0:
            p.warn("try_alloc_zero_size")  # TRYALLOC-04
            return False
        if size & DMA_IOVA_USE_SWIOTLB:
            p.warn("try_alloc_size_flag_bit")  # TRYALLOC-05
            return False
        pad = phys & (self.G - 1)
        base = self._alloc(self._align(size + pad))
        if base is None:
            return False  # TRYALLOC-08
        state.addr = base + pad  # TRYALLOC-06, STATE-01
        state.size = size
        return True

    def _map(self, p: Platform, iova: int, phys: int, length: int, dir: int, attrs: int) -> int:
        """LINK-05/06: clean for the device first (non-coherent), then one map."""
        if self._cache(attrs):
            p.sync_for_device(phys, length, dir)
        return p.iommu_map(iova, phys, length, self._prot(dir, attrs))

    def iova_link(
        self, p: Platform, state: IovaState, phys: int, offset: int, size: int, dir: int, attrs: int
    ) -> int:
        if not self.iommu:
            return -EOPNOTSUPP  # TRYALLOC-03 stubs
        G = self.G
        pad = phys & (G - 1)
        if pad and offset > 0:
            p.warn("link_unaligned_at_offset")  # LINK-01
            return -EIO
        if state.size & DMA_IOVA_USE_SWIOTLB and attrs & DMA_ATTR_REQUIRE_COHERENT:
            p.warn("link_coherent_after_bounce")  # LINK-02
            return -EOPNOTSUPP
        if not self.f.coherent and attrs & DMA_ATTR_REQUIRE_COHERENT:
            return -EOPNOTSUPP  # LINK-03
        if self._would_bounce(phys, size, dir):
            if attrs & (DMA_ATTR_MMIO | DMA_ATTR_REQUIRE_COHERENT):
                return -EPERM  # LINK-04
            return self._link_swiotlb(p, state, phys, offset, size, dir, attrs)
        return self._map(p, (state.addr + offset - pad) & U64, phys - pad, self._align(size + pad), dir, attrs)

    def _bounce(self, p: Platform, orig: int, n: int, iova: int, sp: int, dir: int, attrs: int) -> int:
        """LINK-09's bounce of `n` bytes at `orig` into the granule at `iova`."""
        if not self.f.swiotlb:
            return -ENOMEM
        ret, slot = p.bounce_alloc(orig, n, self.G - 1, self.f.min_align_mask)
        if ret:
            return -ENOMEM
        self.bounced_ever = True  # STREAM-06/13: any bounce clears the skip-sync flag
        self._fill_bounce(p, slot, orig, n)
        ret = self._map(p, iova, slot - sp, self._align(n), dir, attrs)
        if ret:
            self._release(p, slot, orig, n, dir, attrs)
        return ret

    def _fill_bounce(self, p: Platform, slot: int, orig: int, n: int) -> None:
        """The copy in, and on an untrusted device the zeroed padding around it (LINK-09 3-4)."""
        p.copy(slot, orig, n)
        if self.f.untrusted:
            G = self.G
            head = slot & (G - 1)
            if head:
                p.fill(slot - head, 0, head)
            end = slot + n
            tail = self._align(end) - end
            if tail:
                p.fill(end, 0, tail)

    def _release(self, p: Platform, slot: int, orig: int, n: int, dir: int, attrs: int) -> None:
        """UNLINK-05: copy back what the device may have written, then free the slot."""
        if dir in (DMA_FROM_DEVICE, DMA_BIDIRECTIONAL) and not attrs & DMA_ATTR_SKIP_CPU_SYNC:
            if not self.f.coherent:
                p.sync_barrier()
            p.copy(orig, slot, n)
        p.bounce_free(slot, n)

    def _link_swiotlb(
        self, p: Platform, state: IovaState, phys: int, offset: int, size: int, dir: int, attrs: int
    ) -> int:
        """LINK-09: bounce the unaligned head and tail, map the aligned middle directly."""
        G = self.G
        pad = phys & (G - 1)
        end_pad = (phys + size) & (G - 1)
        a = (state.addr + offset) & U64  # addresses are 64-bit and wrap (INTERPRETING)
        mapped = 0
        if pad:
            h = min(size, G - pad)
            ret = self._bounce(p, phys, h, a - pad, pad, dir, attrs)
            if ret:
                return ret
            state.size |= DMA_IOVA_USE_SWIOTLB
            mapped = h
            if h == size:
                return 0
        m = size - mapped - end_pad
        if m:
            ret = self._map(p, a + mapped, phys + mapped, m, dir, attrs)
            if ret:
                return self._unwind(p, state, offset, mapped, dir, attrs, ret)
            mapped += m
        if end_pad:
            ret = self._bounce(p, phys + mapped, end_pad, a + mapped, 0, dir, attrs)
            if ret:
                return self._unwind(p, state, offset, mapped, dir, attrs, ret)
            state.size |= DMA_IOVA_USE_SWIOTLB
        return 0

    def _unwind(self, p: Platform, state: IovaState, offset: int, mapped: int, dir: int, attrs: int, ret: int) -> int:
        if mapped:
            self.iova_unlink(p, state, offset, mapped, dir, attrs)
        return ret

    def iova_sync(self, p: Platform, state: IovaState, offset: int, size: int) -> int:
        if not self.iommu:
            return -EOPNOTSUPP
        a = (state.addr + offset) & U64  # addresses are 64-bit and wrap (INTERPRETING)
        pad = a & (self.G - 1)
        if not self.f.coherent:
            p.sync_barrier()  # SYNC-01: completes the links' cleans
        return p.iotlb_sync_map(a - pad, self._align(size + pad))

    def iova_unlink(self, p: Platform, state: IovaState, offset: int, size: int, dir: int, attrs: int) -> None:
        if not self.iommu:
            return
        a = (state.addr + offset) & U64  # addresses are 64-bit and wrap (INTERPRETING)
        pad = a & (self.G - 1)
        length = self._align(size + pad)
        if state.size & DMA_IOVA_USE_SWIOTLB or self._cache(attrs):
            self._unlink_slow(p, a, size, dir, attrs)
        self._unmap_strict(p, a - pad, length, "unlink_short_unmap")

    def _unmap_strict(self, p: Platform, iova: int, length: int, short_warn: str) -> None:
        """UNLINK-01 / STREAM-03: unmap and invalidate what went, at once."""
        unmapped = p.iommu_unmap(iova, length)
        if unmapped != length:
            p.warn(short_warn)
        if unmapped:
            p.iotlb_sync(iova, unmapped)

    def _unlink_slow(self, p: Platform, a: int, size: int, dir: int, attrs: int) -> None:
        """UNLINK-02/04/05: piece by piece (granule boundaries), CPU work before the unmap."""
        G = self.G
        cache = self._cache(attrs)
        cur, end = a, a + size
        while True:
            piece = min(end - cur, G - (cur & (G - 1)))
            phys = p.iova_to_phys(cur)
            if phys == 0:
                p.warn("unlink_untranslated")
                return
            if cache:
                p.sync_for_cpu(phys, piece, dir)
            if p.is_bounce(phys):
                self._release(p, phys, p.bounce_orig(phys), piece, dir, attrs)
            cur += piece
            if cur >= end:
                break
        if cache:
            p.sync_barrier()

    def iova_destroy(self, p: Platform, state: IovaState, mapped_len: int, dir: int, attrs: int) -> None:
        if not self.iommu:
            return
        if mapped_len:
            self.iova_unlink(p, state, 0, mapped_len, dir, attrs)  # DESTROY-01
        self.iova_free(p, state)  # DESTROY-02

    def iova_free(self, p: Platform, state: IovaState) -> None:
        if not self.iommu:
            return
        pad = state.addr & (self.G - 1)
        base = state.addr - pad
        self.space.give_back(base, base + self._align((state.size & ~DMA_IOVA_USE_SWIOTLB) + pad))  # FREE-01

    def use_iova(self, state: IovaState) -> bool:
        """STATE-02: the stub of a build without CONFIG_IOMMU_DMA is always false."""
        return self.f.iommu_dma_config and state.size != 0

    # -- the streaming API -----------------------------------------------------------------
    def _needs_syncs(self) -> bool:
        """The device's skip-sync flag is clear: non-coherent, or bounced once (STREAM-06)."""
        return not self.f.coherent or self.bounced_ever

    def _to_bus(self, phys: int) -> Optional[int]:
        """STREAM-16: dma-direct bus address (one region from `dma_offset` up, at bus 0)."""
        if phys < self.f.dma_offset:
            return None
        return phys - self.f.dma_offset

    def _to_phys(self, addr: int) -> int:
        return addr + self.f.dma_offset if not self.iommu else addr

    def _iommu_map_single(self, p: Platform, phys: int, size: int, dir: int, attrs: int) -> int:
        """STREAM-01: one reservation, one map, one sync_map."""
        G = self.G
        if self.f.min_align_mask > G - 1:
            p.warn("stream_min_align_unsupported")
            return DMA_MAPPING_ERROR
        off = phys & (G - 1)
        length = self._align(size + off)
        base = self._alloc(length)
        if base is None:
            return DMA_MAPPING_ERROR
        ret = p.iommu_map(base, phys - off, length, self._prot(dir, attrs))
        if ret == 0:
            ret = p.iotlb_sync_map(base, length)
            if ret:
                p.iommu_unmap(base, length)
        if ret:
            self.space.give_back(base, base + length)
            return DMA_MAPPING_ERROR
        self.streaming[base] = length
        return base + off

    def _slot(self, p: Platform, phys: int, size: int, align_mask: int) -> Optional[int]:
        """A bounce for a whole streaming mapping, filled (STREAM-01 / STREAM-15)."""
        if not self.f.swiotlb:
            return None
        ret, slot = p.bounce_alloc(phys, size, align_mask, self.f.min_align_mask)
        if ret:
            return None
        self.bounced_ever = True
        self._fill_bounce(p, slot, phys, size)
        return slot

    def _clean(self, p: Platform, phys: int, size: int, dir: int, attrs: int) -> None:
        """STREAM-02: the exact bytes, completed at once."""
        if self._cache(attrs):
            p.sync_for_device(phys, size, dir)
            p.sync_barrier()

    def map_phys(self, p: Platform, phys: int, size: int, dir: int, attrs: int) -> int:
        if self.iommu:
            if attrs & DMA_ATTR_CC_SHARED:
                return DMA_MAPPING_ERROR  # STREAM-17
            bounce = self._would_bounce(phys, size, dir) and not attrs & DMA_ATTR_MMIO
            if not bounce:
                self._clean(p, phys, size, dir, attrs)
                return self._iommu_map_single(p, phys, size, dir, attrs)
            if attrs & DMA_ATTR_REQUIRE_COHERENT:
                return DMA_MAPPING_ERROR
            slot = self._slot(p, phys, size, self.G - 1)
            if slot is None:
                return DMA_MAPPING_ERROR
            self._clean(p, slot, size, dir, attrs)
            addr = self._iommu_map_single(p, slot, size, dir, attrs)
            if addr == DMA_MAPPING_ERROR:
                self._release(p, slot, phys, size, dir, attrs)
            return addr
        return self._direct_map(p, phys, size, dir, attrs)

    def _direct_map(self, p: Platform, phys: int, size: int, dir: int, attrs: int) -> int:
        """STREAM-05 / STREAM-15 / STREAM-16."""
        f = self.f
        if f.swiotlb_force and f.swiotlb:
            if attrs & (DMA_ATTR_MMIO | DMA_ATTR_REQUIRE_COHERENT):
                return DMA_MAPPING_ERROR
            return self._direct_bounce(p, phys, size, dir, attrs)
        bus = self._to_bus(phys)
        if bus is not None and bus + max(size, 1) - 1 <= self.direct_limit:
            self._clean(p, phys, size, dir, attrs)
            return bus
        if not attrs & (DMA_ATTR_MMIO | DMA_ATTR_REQUIRE_COHERENT) and f.swiotlb:
            return self._direct_bounce(p, phys, size, dir, attrs)
        p.warn("direct_overflow")
        return DMA_MAPPING_ERROR

    def _direct_bounce(self, p: Platform, phys: int, size: int, dir: int, attrs: int) -> int:
        slot = self._slot(p, phys, size, 0)
        if slot is None:
            return DMA_MAPPING_ERROR
        self._clean(p, slot, size, dir, attrs)
        bus = self._to_bus(slot)
        return DMA_MAPPING_ERROR if bus is None else bus

    def _give_back_cpu(self, p: Platform, phys: int, size: int, dir: int, attrs: int, barrier: bool = True) -> None:
        """The CPU side of an unmap: invalidate (non-coherent), then copy back and free a bounce."""
        if self._cache(attrs):
            p.sync_for_cpu(phys, size, dir)
            if barrier:
                p.sync_barrier()

    def unmap_phys(self, p: Platform, addr: int, size: int, dir: int, attrs: int) -> None:
        skip = attrs & (DMA_ATTR_MMIO | DMA_ATTR_REQUIRE_COHERENT)
        if not self.iommu:
            if skip:
                return
            phys = self._to_phys(addr)
            self._give_back_cpu(p, phys, size, dir, attrs)
            if p.is_bounce(phys):
                self._release(p, phys, p.bounce_orig(phys), size, dir, attrs)
            return
        if attrs & DMA_ATTR_CC_SHARED:
            return  # STREAM-17
        phys = 0
        if not skip:
            phys = p.iova_to_phys(addr)
            if phys == 0:
                p.warn("stream_unmap_untranslated")
                return
            self._give_back_cpu(p, phys, size, dir, attrs)
        off = addr & (self.G - 1)
        base = addr - off
        length = self._align(size + off)
        self._unmap_strict(p, base, length, "stream_unmap_short")
        if self.streaming.pop(base, None) is not None:
            self.space.give_back(base, base + length)
        if phys and p.is_bounce(phys):
            self._release(p, phys, p.bounce_orig(phys), size, dir, attrs)

    def _stream_phys(self, p: Platform, addr: int) -> int:
        return p.iova_to_phys(addr) if self.iommu else self._to_phys(addr)

    def sync_single_for_cpu(self, p: Platform, addr: int, size: int, dir: int) -> None:
        """STREAM-07."""
        if not self._needs_syncs():
            return
        phys = self._stream_phys(p, addr)
        if not self.f.coherent:
            p.sync_for_cpu(phys, size, dir)
            p.sync_barrier()
        if dir in (DMA_FROM_DEVICE, DMA_BIDIRECTIONAL) and p.is_bounce(phys):
            p.copy(p.bounce_orig(phys), phys, size)

    def sync_single_for_device(self, p: Platform, addr: int, size: int, dir: int) -> None:
        """STREAM-07."""
        if not self._needs_syncs():
            return
        phys = self._stream_phys(p, addr)
        if dir in (DMA_TO_DEVICE, DMA_BIDIRECTIONAL) and p.is_bounce(phys):
            p.copy(phys, p.bounce_orig(phys), size)
        if not self.f.coherent:
            p.sync_for_device(phys, size, dir)
            p.sync_barrier()

    def need_unmap(self, p: Platform) -> bool:
        """STREAM-06."""
        return self.iommu or self._needs_syncs()

    def need_sync(self, p: Platform, addr: int) -> bool:
        """STREAM-13."""
        if not self._needs_syncs():
            return False
        if self.iommu:
            return True
        return not self.f.coherent or p.is_bounce(self._to_phys(addr))

    # -- scatterlists ----------------------------------------------------------------------
    def map_sg(self, p: Platform, segs: List[SgEntry], dir: int, attrs: int) -> int:
        if not self.iommu:
            return self._direct_map_sg(p, segs, dir, attrs)
        if self.f.untrusted or any(self._kmalloc_rule(e.len, dir) for e in segs):
            return self._map_sg_each(p, segs, dir, attrs)
        return self._iommu_map_sg(p, segs, dir, attrs)

    def _clear(self, segs: List[SgEntry]) -> None:
        for e in segs:
            e.dma_address = 0
            e.dma_len = 0
            e.flags = 0

    def _direct_map_sg(self, p: Platform, segs: List[SgEntry], dir: int, attrs: int) -> int:
        """STREAM-10 / STREAM-12 on dma-direct: one DMA segment per entry."""
        cache = self._cache(attrs)
        for i, e in enumerate(segs):
            kind = p.p2p_type(e.phys)
            if kind == P2P_BUS_ADDR:
                e.dma_address = e.phys + p.p2p_bus_offset(e.phys)
                e.dma_len = e.len
                e.flags = SG_DMA_BUS_ADDRESS
                continue
            if kind not in (P2P_NONE, P2P_THRU_HOST_BRIDGE):
                self._direct_unmap_entries(p, segs[:i], dir, attrs | DMA_ATTR_SKIP_CPU_SYNC)
                self._clear(segs)
                return -EREMOTEIO
            addr = self._direct_map_entry(p, e.phys, e.len, dir, attrs)
            if addr == DMA_MAPPING_ERROR:
                self._direct_unmap_entries(p, segs[:i], dir, attrs | DMA_ATTR_SKIP_CPU_SYNC)
                self._clear(segs)
                return -EIO
            e.dma_address = addr
            e.dma_len = e.len
            e.flags = 0
        if cache:
            p.sync_barrier()
        return len(segs)

    def _direct_map_entry(self, p: Platform, phys: int, size: int, dir: int, attrs: int) -> int:
        """STREAM-05 for one entry, with the list's single barrier left to the caller."""
        f = self.f
        bus = self._to_bus(phys)
        forced = f.swiotlb_force and f.swiotlb
        if not forced and bus is not None and bus + max(size, 1) - 1 <= self.direct_limit:
            if self._cache(attrs):
                p.sync_for_device(phys, size, dir)
            return bus
        return self._direct_map(p, phys, size, dir, attrs)

    def _direct_unmap_entries(self, p: Platform, segs: List[SgEntry], dir: int, attrs: int) -> None:
        any_cpu = False
        for e in segs:
            if e.flags & SG_DMA_BUS_ADDRESS:
                continue
            any_cpu = True
            phys = self._to_phys(e.dma_address)
            self._give_back_cpu(p, phys, e.dma_len, dir, attrs, barrier=False)
            if p.is_bounce(phys):
                self._release(p, phys, p.bounce_orig(phys), e.dma_len, dir, attrs)
        if any_cpu and self._cache(attrs):
            p.sync_barrier()

    def _map_sg_each(self, p: Platform, segs: List[SgEntry], dir: int, attrs: int) -> int:
        """STREAM-11: entry by entry through map_phys."""
        for i, e in enumerate(segs):
            addr = self.map_phys(p, e.phys, e.len, dir, attrs)
            if addr == DMA_MAPPING_ERROR:
                for d in segs[:i]:
                    self.unmap_phys(p, d.dma_address, d.dma_len, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC)
                self._clear(segs)
                return -EIO
            e.dma_address = addr
            e.dma_len = e.len
            e.flags = 0
        return len(segs)

    def _iommu_map_sg(self, p: Platform, segs: List[SgEntry], dir: int, attrs: int) -> int:
        """STREAM-08/09/12: one reservation for the list, runs of contiguous entries mapped
        together, DMA segments merged within the boundary and size limits."""
        G = self.G
        f = self.f
        if self._cache(attrs):
            for e in segs:
                p.sync_for_device(e.phys, e.len, dir)
            p.sync_barrier()
        mask = f.seg_boundary_mask
        kinds = []
        layout = []  # per entry: (offset in the reservation, mapped length incl. padding) or None
        run = 0
        prev = None
        for i, e in enumerate(segs):
            kind = p.p2p_type(e.phys)
            kinds.append(kind)
            if kind == P2P_BUS_ADDR:
                layout.append(None)
                continue
            if kind not in (P2P_NONE, P2P_THRU_HOST_BRIDGE):
                self._clear(segs)
                return -EREMOTEIO
            off = e.phys & (G - 1)
            length = self._align(e.len + off)
            pad = (mask - run + 1) & mask
            if pad and pad < length - 1 and prev is not None:
                po, pl = layout[prev]
                layout[prev] = (po, pl + pad)
                run += pad
            layout.append((run, length))
            run += length
            prev = i
        total = run
        base = self._alloc(total) if total else None
        if total and base is None:
            self._clear(segs)
            return -ENOMEM
        prot = self._prot(dir, attrs)
        # Runs: entries whose physical starts follow each other, with no bus-address entry between.
        mapped = 0
        run_start = None
        run_len = 0
        failed = False

        def flush() -> bool:
            nonlocal mapped, run_start, run_len
            if run_start is None:
                return True
            ret = p.iommu_map(base + mapped, run_start, run_len, prot)
            if ret:
                return False
            mapped += run_len
            run_start, run_len = None, 0
            return True

        for e, lay in zip(segs, layout):
            if lay is None:
                if not flush():
                    failed = True
                    break
                continue
            start = e.phys & ~(G - 1)
            if run_start is not None and run_start + run_len == start:
                run_len += lay[1]
            else:
                if not flush():
                    failed = True
                    break
                run_start, run_len = start, lay[1]
        if not failed and not flush():
            failed = True
        if not failed and mapped:
            if p.iotlb_sync_map(base, mapped):
                failed = True
        if failed:
            if mapped:
                unmapped = p.iommu_unmap(base, mapped)
                if unmapped:
                    p.iotlb_sync(base, unmapped)
            if base is not None:
                self.space.give_back(base, base + total)
            self._clear(segs)
            return -EINVAL
        if base is not None:
            self.streaming[base] = total
        # __finalise_sg: the DMA segments, written at the front of the list.
        out: List[Tuple[int, int, int]] = []  # (dma_address, dma_len, flags)
        cur = None  # the open segment: [address, length]
        max_seg = f.max_seg_size
        for e, lay, kind in zip(segs, layout, kinds):
            if lay is None:
                if cur is not None:
                    out.append((cur[0], cur[1], 0))
                    cur = None
                out.append((e.phys + p.p2p_bus_offset(e.phys), e.len, SG_DMA_BUS_ADDRESS))
                continue
            off = e.phys & (G - 1)
            iova = base + lay[0] + off
            if (
                cur is not None
                and off == 0
                and cur[0] + cur[1] == iova
                and iova & mask != 0
                and cur[1] + e.len <= max_seg
            ):
                cur[1] += e.len
            else:
                if cur is not None:
                    out.append((cur[0], cur[1], 0))
                cur = [iova, e.len]
            if (e.phys + e.len) & (G - 1) or lay[1] != self._align(e.len + off):
                out.append((cur[0], cur[1], 0))
                cur = None
        if cur is not None:
            out.append((cur[0], cur[1], 0))
        self._clear(segs)
        for e, (a, n, fl) in zip(segs, out):
            e.dma_address, e.dma_len, e.flags = a, n, fl
        return len(out)

    def unmap_sg(self, p: Platform, segs: List[SgEntry], dir: int, attrs: int) -> None:
        if not self.iommu:
            self._direct_unmap_entries(p, [e for e in segs if e.dma_len or e.flags], dir, attrs)
            return
        if self.f.untrusted or any(self._kmalloc_rule(e.len, dir) for e in segs):
            for e in segs:
                if e.dma_len:
                    self.unmap_phys(p, e.dma_address, e.dma_len, dir, attrs)
            return
        if self._cache(attrs):
            for e in segs:
                if p.p2p_type(e.phys) != P2P_BUS_ADDR:
                    p.sync_for_cpu(e.phys, e.len, dir)
            p.sync_barrier()
        start = end = None
        for e in segs:
            if not e.dma_len:
                break
            if e.flags & SG_DMA_BUS_ADDRESS:
                continue
            if start is None:
                start = e.dma_address
            end = e.dma_address + e.dma_len
        if start is None:
            return
        G = self.G
        base = start & ~(G - 1)
        length = self._align(end) - base
        self._unmap_strict(p, base, length, "stream_unmap_short")
        total = self.streaming.pop(base, None)
        if total is not None:
            self.space.give_back(base, base + total)
