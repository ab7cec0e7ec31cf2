//! The mutant catalogue (issue 20): plausible bugs of the DMA layer, each named after the rule
//! it breaks, each required to make at least one vector go red while the reference passes it.
//! The historical bugs B1..B11 of this API (`shared/design/USERS-AND-HISTORY.md` §3) are here
//! in the form a DMA layer can carry them, beside classic slips.
//!
//! Most mutants bend the reference from outside: [`Bent`] wraps the platform and alters one
//! kind of call, [`Mutant`] wraps the reference and alters one API call. The few that live
//! inside a loop or a decision are seeded in the reference itself
//! (`dmaconf_reference::seeded`, built with its `seeded-bugs` feature).
//!
//! Only the vectors' expectations catch: a (profile, vector) counts when the reference's result
//! is ok and the mutant's is not. Trace snapshots play no part. Which vectors catch each mutant
//! is itself a snapshot (`tests/mutants/catalogue.snap`), so a vector change that stops
//! catching one shows in review and fails CI.

use std::collections::BTreeMap;
use std::path::Path;

use dmaconf_engine::report::{run_suite, Filter, Report};
use dmaconf_engine::{load_suite, Implementation, Profile, ResultClass, Suite};
use dmaconf_platform::{
    dma_iova_size, errno, Attrs, Dir, DmaApi, IovaState, Platform, PlatformFacts, Prot, Region,
    RegionKind, SgEntry, WarnCode, DMA_IOVA_USE_SWIOTLB,
};
use dmaconf_reference::link::link_range;
use dmaconf_reference::seeded::{self, SeededBug};
use dmaconf_reference::Reference;

/// How a mutant breaks the reference.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Bug {
    /// No bug: the wrappers alone, which must change nothing (the catalogue's control).
    Nothing,
    /// once a platform call of an API call has failed, the unwinding's `iommu_unmap` and
    /// `bounce_free` are dropped: what the call had set up leaks on its error path (issue 15,
    /// the `--fail-nth` sweep).
    LeaksOnErrorPath,
    /// unlink and destroy never reach `iommu_unmap` (and pretend it worked).
    UnlinkDoesNotUnmap,
    /// every map swaps the READ and WRITE bits of prot.
    WrongProtBits,
    /// every map drops `IOMMU_CACHE` (a coherent device's mappings become non-snooped).
    NoCacheableProt,
    /// try_alloc reports an IOVA one granule above the one it reserved.
    IovaOffByOneGranule,
    /// try_alloc leaves the caller's state as it was when it fails.
    TryAllocKeepsStateOnFailure,
    /// B7: a size with bit 63 set is allocated without it, no WARN.
    SizeFlagBitAccepted,
    /// link panics (a crashing implementation).
    LinkPanics,
    /// the CPU-to-device cache clean of link is never issued.
    NoCacheClean,
    /// the cache clean is skipped for `DMA_BIDIRECTIONAL` only.
    NoCleanForBidirectional,
    /// the barrier (arm64 `dsb sy`) is never issued: cleans and invalidates never complete.
    NoBarrier,
    /// B11: `dma_iova_sync` issues no barrier (the completion moved out of link forgotten).
    SyncWithoutBarrier,
    /// `dma_iova_sync` never calls `iotlb_sync_map` (and says it worked).
    SyncMapSkipped,
    /// B6's enabler: `dma_iova_sync` reports success whatever `iotlb_sync_map` returned.
    SyncErrorSwallowed,
    /// the cache invalidate of unlink (`sync_for_cpu`) is never issued.
    NoInvalidateAtUnlink,
    /// unlink skips the IOTLB invalidation (`iotlb_sync`) after its unmap.
    NoIotlbSyncAtUnlink,
    /// unlink is asked one granule less than the caller's size (the last granule stays).
    UnlinkSkipsLastGranule,
    /// copies out of a bounce slot are dropped (no copy back at unlink).
    NoBounceCopyBack,
    /// the copy into a bounce slot is one byte short.
    BounceCopyOneByteShort,
    /// an untrusted device's bounce granule keeps stale bytes around the copy (no zeroing).
    NoBouncePadZeroing,
    /// bounce requests pass no `min_align_mask` (the bounce keeps no in-granule offset).
    BounceIgnoresMinAlign,
    /// bounce slots are never released.
    NoBounceRelease,
    /// B5: the SWIOTLB flag does not survive in the state (no room for it in the size word).
    SwiotlbFlagLost,
    /// B2: `DMA_ATTR_REQUIRE_COHERENT` is not honoured by link.
    RequireCoherentIgnored,
    /// B8: the unaligned-phys-at-offset check is missing; the range is linked anyway.
    UnalignedAtOffsetLinked,
    /// B10: every range is linked at offset 0 of the IOVA.
    LinkAtOffsetZero,
    /// a link that fails in the page table is followed by `dma_iova_unlink(offset, 0)` even
    /// when nothing was mapped (issue 21 Q2).
    UnwindEvenWhenNothingMapped,
    /// `bounce_free` given the allocation's granule base and the granule, not the piece's
    /// address and length (issue 21 Q4).
    BounceFreeWholeGranule,
    /// a size-0 unlink takes no slow-path walk (no piece, no barrier), only the fast part
    /// (issue 21 Q10).
    EmptyUnlinkSkipsWalk,
    /// the kmalloc classes taken as 8-byte classes whether or not a bounce pool exists
    /// (issue 21 Q1).
    KmallocClassesIgnorePool,
    /// every reported region reserved, host-bridge windows and dma-range gaps included, for a
    /// platform device too (issue 21 Q12).
    ReserveEveryRegion,
    /// the head bounce's clean taken at the slot's own granule instead of `slot - pad`
    /// (issue 21 Q6).
    HeadCleanAtSlotGranule,
    /// a link with `DMA_NONE` (or an invalid direction) refused by the DMA layer itself, before
    /// the page table sees it (issue 21 Q13).
    RefuseDmaNoneEarly,
    /// the zero-length head bounce mapped as one whole granule (issue 21 Q19).
    ZeroLengthBounceMapsGranule,
    /// B9: destroy unlinks the whole reservation instead of `mapped_len`.
    DestroyWithAllocationSize,
    /// B3's symptom: destroy frees without unlinking (mappings leak).
    DestroyOnlyFrees,
    /// free does nothing: the reservation is never released.
    FreeKeepsReservation,
    /// a bug seeded inside the reference.
    Seeded(SeededBug),
}

/// The catalogue: each mutant under the rule it breaks. Every one must be caught.
const CATALOGUE: &[(&str, Bug)] = &[
    (
        "TRYALLOC-01 state kept on failure",
        Bug::TryAllocKeepsStateOnFailure,
    ),
    (
        "TRYALLOC-05 B7 size with bit 63 accepted",
        Bug::SizeFlagBitAccepted,
    ),
    (
        "TRYALLOC-07 IOVA one granule high",
        Bug::IovaOffByOneGranule,
    ),
    ("STATE-04 B5 SWIOTLB flag lost", Bug::SwiotlbFlagLost),
    (
        "LINK-01 B8 unaligned phys at offset linked",
        Bug::UnalignedAtOffsetLinked,
    ),
    (
        "LINK-03 B2 REQUIRE_COHERENT ignored",
        Bug::RequireCoherentIgnored,
    ),
    (
        "LINK-04 kmalloc classes ignore the pool",
        Bug::KmallocClassesIgnorePool,
    ),
    (
        "LINK-04 kmalloc bounced for DMA_TO_DEVICE",
        Bug::Seeded(SeededBug::KmallocBounceToDevice),
    ),
    ("LINK-05 B10 every range at offset 0", Bug::LinkAtOffsetZero),
    ("LINK-06 no cache clean", Bug::NoCacheClean),
    (
        "LINK-06 no cache clean for BIDIRECTIONAL",
        Bug::NoCleanForBidirectional,
    ),
    (
        "LINK-06 head clean at the slot granule",
        Bug::HeadCleanAtSlotGranule,
    ),
    (
        "LINK-08 unwind when nothing was mapped",
        Bug::UnwindEvenWhenNothingMapped,
    ),
    (
        "LINK-09 B1a zero-length middle linked",
        Bug::Seeded(SeededBug::ZeroLengthMiddleLinked),
    ),
    (
        "LINK-09 B1b unwind from offset 0",
        Bug::Seeded(SeededBug::UnwindFromOffsetZero),
    ),
    (
        "LINK-09 bounce copy one byte short",
        Bug::BounceCopyOneByteShort,
    ),
    ("LINK-09 bounce padding not zeroed", Bug::NoBouncePadZeroing),
    (
        "LINK-09 bounce without min_align_mask",
        Bug::BounceIgnoresMinAlign,
    ),
    (
        "LINK-09 zero-length bounce maps a granule",
        Bug::ZeroLengthBounceMapsGranule,
    ),
    ("PROT-01 READ and WRITE swapped", Bug::WrongProtBits),
    ("PROT-01 IOMMU_CACHE dropped", Bug::NoCacheableProt),
    (
        "PROT-02 DMA_NONE refused before the page table",
        Bug::RefuseDmaNoneEarly,
    ),
    ("SYNC-01 no barrier anywhere", Bug::NoBarrier),
    ("SYNC-01 B11 no barrier in sync", Bug::SyncWithoutBarrier),
    ("SYNC-01 iotlb_sync_map skipped", Bug::SyncMapSkipped),
    ("UNLINK-01 no unmap", Bug::UnlinkDoesNotUnmap),
    (
        "UNLINK-01 last granule skipped",
        Bug::UnlinkSkipsLastGranule,
    ),
    (
        "UNLINK-02 empty unlink without its walk",
        Bug::EmptyUnlinkSkipsWalk,
    ),
    ("UNLINK-02 no cache invalidate", Bug::NoInvalidateAtUnlink),
    (
        "UNLINK-04 B4 untranslated piece skipped",
        Bug::Seeded(SeededBug::UntranslatedPieceSkipped),
    ),
    ("UNLINK-05 no copy back", Bug::NoBounceCopyBack),
    ("UNLINK-05 bounce slot leaked", Bug::NoBounceRelease),
    (
        "UNLINK-05 bounce_free of the whole granule",
        Bug::BounceFreeWholeGranule,
    ),
    ("UNLINK-06 no IOTLB invalidation", Bug::NoIotlbSyncAtUnlink),
    ("DESTROY-01 B3 free without unlink", Bug::DestroyOnlyFrees),
    (
        "DESTROY-03 B9 unlink of the whole reservation",
        Bug::DestroyWithAllocationSize,
    ),
    ("FREE-01 reservation kept", Bug::FreeKeepsReservation),
    ("IOVA-04 rcache FIFO", Bug::Seeded(SeededBug::RcacheFifo)),
    (
        "IOVA-05 bridge windows reserved for a platform device",
        Bug::ReserveEveryRegion,
    ),
    (
        "STREAM-04 flush-queue timer one jiffy early",
        Bug::Seeded(SeededBug::FqTimerOneJiffyEarly),
    ),
    (
        "STREAM-09 sg merged across a segment boundary",
        Bug::Seeded(SeededBug::SgMergeAcrossBoundary),
    ),
];

/// Mutants no input can tell from the reference on the machine as modelled, each with why.
/// They must stay uncaught: a vector that starts catching one moves it to [`CATALOGUE`].
const UNOBSERVABLE: &[(&str, Bug, &str)] = &[(
    "SYNC-01 B6 sync error swallowed",
    Bug::SyncErrorSwallowed,
    "no modelled IOMMU fails iotlb_sync_map: VT-d and AMD return 0 (intel/iommu.c:3564, \
     amd/iommu.c:2672), SMMUv3 and the RISC-V IOMMU have none; only virtio-iommu and s390 can fail",
)];

/// A platform seen through a bug: forwards everything, bending one kind of call.
struct Bent<'a> {
    inner: &'a mut dyn Platform,
    bug: Bug,
    /// A fallible platform call of this API call has failed.
    failed: bool,
}

impl Bent<'_> {
    /// Notes a failed platform call; `leaking` is then true for `LeaksOnErrorPath`.
    fn note(&mut self, ret: i32) -> i32 {
        self.failed |= ret != 0;
        ret
    }
    fn leaking(&self) -> bool {
        self.bug == Bug::LeaksOnErrorPath && self.failed
    }
}

impl Platform for Bent<'_> {
    fn facts(&self) -> PlatformFacts {
        let mut f = self.inner.facts();
        if self.bug == Bug::KmallocClassesIgnorePool {
            f.swiotlb = true;
        }
        f
    }
    fn reserved_region(&self, index: u32) -> Option<Region> {
        let r = self.inner.reserved_region(index);
        match r {
            Some(mut r) if self.bug == Bug::ReserveEveryRegion => {
                r.kind = RegionKind::Reserved;
                Some(r)
            }
            _ => r,
        }
    }
    fn current_cpu(&self) -> u32 {
        self.inner.current_cpu()
    }
    fn now_ns(&self) -> u64 {
        self.inner.now_ns()
    }
    fn iommu_map(&mut self, iova: u64, phys: u64, len: u64, prot: Prot) -> i32 {
        let len = if self.bug == Bug::ZeroLengthBounceMapsGranule
            && len == 0
            && self.inner.is_bounce(phys)
        {
            self.inner.facts().granule()
        } else {
            len
        };
        let prot = match self.bug {
            Bug::WrongProtBits => {
                let rw = prot.0 & 3;
                Prot((prot.0 & !3) | ((rw & 1) << 1) | ((rw & 2) >> 1))
            }
            Bug::NoCacheableProt => Prot(prot.0 & !Prot::CACHE.0),
            _ => prot,
        };
        let r = self.inner.iommu_map(iova, phys, len, prot);
        self.note(r)
    }
    fn iotlb_sync_map(&mut self, iova: u64, len: u64) -> i32 {
        if self.bug == Bug::SyncMapSkipped {
            return 0;
        }
        let r = self.inner.iotlb_sync_map(iova, len);
        self.note(r)
    }
    fn iommu_unmap(&mut self, iova: u64, len: u64) -> u64 {
        if self.bug == Bug::UnlinkDoesNotUnmap || self.leaking() {
            return len;
        }
        self.inner.iommu_unmap(iova, len)
    }
    fn iotlb_sync(&mut self, iova: u64, len: u64) {
        if self.bug == Bug::NoIotlbSyncAtUnlink {
            return;
        }
        self.inner.iotlb_sync(iova, len)
    }
    fn flush_iotlb_all(&mut self) {
        self.inner.flush_iotlb_all()
    }
    fn iova_to_phys(&self, iova: u64) -> u64 {
        self.inner.iova_to_phys(iova)
    }
    fn sync_for_device(&mut self, phys: u64, len: u64, dir: Dir) {
        if self.bug == Bug::NoCacheClean
            || (self.bug == Bug::NoCleanForBidirectional && dir == Dir::BIDIRECTIONAL)
        {
            return;
        }
        if self.bug == Bug::HeadCleanAtSlotGranule && !self.inner.is_bounce(phys) {
            let up = phys.next_multiple_of(self.inner.facts().granule());
            if self.inner.is_bounce(up) {
                return self.inner.sync_for_device(up, len, dir);
            }
        }
        self.inner.sync_for_device(phys, len, dir)
    }
    fn sync_for_cpu(&mut self, phys: u64, len: u64, dir: Dir) {
        if self.bug == Bug::NoInvalidateAtUnlink {
            return;
        }
        self.inner.sync_for_cpu(phys, len, dir)
    }
    fn sync_barrier(&mut self) {
        if self.bug == Bug::NoBarrier {
            return;
        }
        self.inner.sync_barrier()
    }
    fn bounce_alloc(&mut self, orig: u64, len: u64, a: u64, m: u64, slot: &mut u64) -> i32 {
        let m = if self.bug == Bug::BounceIgnoresMinAlign {
            0
        } else {
            m
        };
        let r = self.inner.bounce_alloc(orig, len, a, m, slot);
        self.note(r)
    }
    fn bounce_free(&mut self, slot: u64, len: u64) {
        if self.bug == Bug::NoBounceRelease || self.leaking() {
            return;
        }
        if self.bug == Bug::BounceFreeWholeGranule {
            let g = self.inner.facts().granule();
            return self.inner.bounce_free(slot & !(g - 1), g);
        }
        self.inner.bounce_free(slot, len)
    }
    fn is_bounce(&self, phys: u64) -> bool {
        self.inner.is_bounce(phys)
    }
    fn p2p_type(&self, phys: u64) -> u32 {
        self.inner.p2p_type(phys)
    }
    fn p2p_bus_offset(&self, phys: u64) -> u64 {
        self.inner.p2p_bus_offset(phys)
    }
    fn bounce_orig(&self, phys: u64) -> u64 {
        self.inner.bounce_orig(phys)
    }
    fn copy(&mut self, dst: u64, src: u64, len: u64) {
        if self.bug == Bug::NoBounceCopyBack && self.inner.is_bounce(src) {
            return;
        }
        if self.bug == Bug::BounceCopyOneByteShort && self.inner.is_bounce(dst) && len > 0 {
            return self.inner.copy(dst, src, len - 1);
        }
        self.inner.copy(dst, src, len)
    }
    fn fill(&mut self, dst: u64, byte: u8, len: u64) {
        if self.bug == Bug::NoBouncePadZeroing {
            return;
        }
        self.inner.fill(dst, byte, len)
    }
    fn warn(&mut self, code: WarnCode) {
        self.inner.warn(code)
    }
}

struct Mutant {
    reference: Reference,
    bug: Bug,
}

impl Mutant {
    /// The platform as this mutant's calls see it.
    fn bend<'a>(&self, p: &'a mut dyn Platform) -> Bent<'a> {
        Bent {
            inner: p,
            bug: self.bug,
            failed: false,
        }
    }
}

impl DmaApi for Mutant {
    fn probe(&mut self, p: &mut dyn Platform) -> i32 {
        let mut bent = self.bend(p);
        self.reference.probe(&mut bent)
    }
    fn iova_try_alloc(
        &mut self,
        p: &mut dyn Platform,
        s: &mut IovaState,
        phys: u64,
        size: u64,
    ) -> bool {
        let before = *s;
        let size = match self.bug {
            Bug::SizeFlagBitAccepted => size & !DMA_IOVA_USE_SWIOTLB,
            _ => size,
        };
        let ok = self.reference.iova_try_alloc(p, s, phys, size);
        match self.bug {
            Bug::IovaOffByOneGranule if ok => s.addr += p.facts().granule(),
            Bug::TryAllocKeepsStateOnFailure if !ok => *s = before,
            _ => {}
        }
        ok
    }
    fn iova_link(
        &mut self,
        p: &mut dyn Platform,
        s: &mut IovaState,
        phys: u64,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> i32 {
        match self.bug {
            Bug::LinkPanics => panic!("mutant link panics on purpose"),
            Bug::RefuseDmaNoneEarly if dir.0 > 2 => return -errno::EINVAL,
            _ => {}
        }
        let attrs = match self.bug {
            Bug::RequireCoherentIgnored => Attrs(attrs.0 & !Attrs::REQUIRE_COHERENT.0),
            _ => attrs,
        };
        let offset = match self.bug {
            Bug::LinkAtOffsetZero => 0,
            _ => offset,
        };
        if let (Bug::UnalignedAtOffsetLinked, Some(dev)) = (self.bug, self.reference.device()) {
            let granule = dev.iovad.granule();
            let pad = phys & (granule - 1);
            if pad != 0 && offset > 0 {
                // LINK-05's normal path without LINK-01's refusal.
                let iova = s.addr.wrapping_add(offset).wrapping_sub(pad);
                let len = size.wrapping_add(pad).next_multiple_of(granule);
                let mut bent = Bent {
                    inner: p,
                    bug: self.bug,
                    failed: false,
                };
                return link_range(dev, &mut bent, iova, phys - pad, len, dir, attrs);
            }
        }
        let mut bent = Bent {
            inner: p,
            bug: self.bug,
            failed: false,
        };
        let ret = self
            .reference
            .iova_link(&mut bent, s, phys, offset, size, dir, attrs);
        let checks = [
            -errno::EIO,
            -errno::EOPNOTSUPP,
            -errno::EPERM,
            -errno::ENOMEM,
        ];
        if self.bug == Bug::UnwindEvenWhenNothingMapped && ret != 0 && !checks.contains(&ret) {
            self.reference.iova_unlink(p, s, offset, 0, dir, attrs);
        }
        if self.bug == Bug::SwiotlbFlagLost {
            s.size &= !DMA_IOVA_USE_SWIOTLB;
        }
        ret
    }
    fn iova_sync(&mut self, p: &mut dyn Platform, s: &IovaState, offset: u64, size: u64) -> i32 {
        let bug = match self.bug {
            Bug::SyncWithoutBarrier => Bug::NoBarrier,
            other => other,
        };
        let mut bent = Bent {
            inner: p,
            bug,
            failed: false,
        };
        let ret = self.reference.iova_sync(&mut bent, s, offset, size);
        if self.bug == Bug::SyncErrorSwallowed {
            return 0;
        }
        ret
    }
    fn iova_unlink(
        &mut self,
        p: &mut dyn Platform,
        s: &IovaState,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        let g = p.facts().granule();
        if self.bug == Bug::EmptyUnlinkSkipsWalk && size == 0 && g != 0 {
            // Only the fast part of UNLINK-01, as if the walk had no piece to visit.
            let addr = s.addr + offset;
            let pad = addr & (g - 1);
            let len = (pad + g - 1) & !(g - 1);
            let unmapped = p.iommu_unmap(addr - pad, len);
            if unmapped != 0 {
                p.iotlb_sync(addr - pad, unmapped);
            }
            return;
        }
        let size = match self.bug {
            Bug::UnlinkSkipsLastGranule if size > g => size - g,
            _ => size,
        };
        let mut bent = self.bend(p);
        self.reference
            .iova_unlink(&mut bent, s, offset, size, dir, attrs)
    }
    fn iova_destroy(
        &mut self,
        p: &mut dyn Platform,
        s: &IovaState,
        mapped_len: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        let mapped_len = match self.bug {
            Bug::DestroyWithAllocationSize => dma_iova_size(s),
            Bug::DestroyOnlyFrees => 0,
            _ => mapped_len,
        };
        let mut bent = self.bend(p);
        self.reference
            .iova_destroy(&mut bent, s, mapped_len, dir, attrs)
    }
    fn iova_free(&mut self, p: &mut dyn Platform, s: &IovaState) {
        if self.bug == Bug::FreeKeepsReservation {
            return;
        }
        self.reference.iova_free(p, s)
    }
    fn map_phys(&mut self, p: &mut dyn Platform, phys: u64, size: u64, d: Dir, a: Attrs) -> u64 {
        let mut bent = self.bend(p);
        self.reference.map_phys(&mut bent, phys, size, d, a)
    }
    fn unmap_phys(&mut self, p: &mut dyn Platform, addr: u64, size: u64, d: Dir, a: Attrs) {
        let mut bent = self.bend(p);
        self.reference.unmap_phys(&mut bent, addr, size, d, a)
    }
    fn sync_single_for_cpu(&mut self, p: &mut dyn Platform, addr: u64, size: u64, d: Dir) {
        let mut bent = self.bend(p);
        self.reference.sync_single_for_cpu(&mut bent, addr, size, d)
    }
    fn sync_single_for_device(&mut self, p: &mut dyn Platform, addr: u64, size: u64, d: Dir) {
        let mut bent = self.bend(p);
        self.reference
            .sync_single_for_device(&mut bent, addr, size, d)
    }
    fn map_sg(&mut self, p: &mut dyn Platform, segs: &mut [SgEntry], d: Dir, a: Attrs) -> i32 {
        let mut bent = self.bend(p);
        self.reference.map_sg(&mut bent, segs, d, a)
    }
    fn unmap_sg(&mut self, p: &mut dyn Platform, segs: &mut [SgEntry], d: Dir, a: Attrs) {
        let mut bent = self.bend(p);
        self.reference.unmap_sg(&mut bent, segs, d, a)
    }
    fn need_unmap(&mut self, p: &mut dyn Platform) -> bool {
        let mut bent = self.bend(p);
        self.reference.need_unmap(&mut bent)
    }
    fn need_sync(&mut self, p: &mut dyn Platform, addr: u64) -> bool {
        let mut bent = self.bend(p);
        self.reference.need_sync(&mut bent, addr)
    }
    fn map_page_attrs(&mut self, p: &mut dyn Platform, ph: u64, n: u64, d: Dir, a: Attrs) -> u64 {
        let mut bent = self.bend(p);
        self.reference.map_page_attrs(&mut bent, ph, n, d, a)
    }
    fn unmap_page_attrs(&mut self, p: &mut dyn Platform, addr: u64, n: u64, d: Dir, a: Attrs) {
        let mut bent = self.bend(p);
        self.reference.unmap_page_attrs(&mut bent, addr, n, d, a)
    }
    fn map_resource(&mut self, p: &mut dyn Platform, ph: u64, n: u64, d: Dir, a: Attrs) -> u64 {
        let mut bent = self.bend(p);
        self.reference.map_resource(&mut bent, ph, n, d, a)
    }
    fn unmap_resource(&mut self, p: &mut dyn Platform, addr: u64, n: u64, d: Dir, a: Attrs) {
        let mut bent = self.bend(p);
        self.reference.unmap_resource(&mut bent, addr, n, d, a)
    }
    fn advance_time(&mut self, p: &mut dyn Platform, now_ns: u64) {
        let mut bent = self.bend(p);
        self.reference.advance_time(&mut bent, now_ns)
    }
    fn use_iova(&self, s: &IovaState) -> bool {
        self.reference.use_iova(s)
    }
    fn iova_size(&self, s: &IovaState) -> u64 {
        self.reference.iova_size(s)
    }
}

fn suite() -> Suite {
    load_suite(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors"))
}

fn run(suite: &Suite, implementation: &Implementation) -> Report {
    run_suite(
        suite,
        implementation,
        &Profile::ALL,
        &Filter::default(),
        |_| {},
    )
    .expect("the suite runs")
}

fn results(report: &Report) -> BTreeMap<(Profile, String), ResultClass> {
    report
        .vectors
        .iter()
        .flat_map(|v| v.results.iter().map(|(p, r)| ((*p, v.id.clone()), r.class)))
        .collect()
}

fn mutant(bug: Bug) -> Implementation {
    let mut m = Implementation::new(format!("mutant {bug:?}"), &[], move || {
        Box::new(Mutant {
            reference: Reference::new(),
            bug,
        })
    });
    m.capabilities = dmaconf::reference().capabilities;
    m
}

/// The (profile, vector)s the reference passes and `bug` does not, as `profile::id: class`.
fn caught_by(
    suite: &Suite,
    control: &BTreeMap<(Profile, String), ResultClass>,
    bug: Bug,
) -> Vec<String> {
    let seed = match bug {
        Bug::Seeded(s) => Some(s),
        _ => None,
    };
    let got = seeded::with(seed, || results(&run(suite, &mutant(bug))));
    control
        .iter()
        .filter(|(_, c)| c.is_ok())
        .filter_map(|(key, _)| {
            let class = got.get(key).copied()?;
            (!class.is_ok()).then(|| format!("{}::{}: {}", key.0.name(), key.1, class.name()))
        })
        .collect()
}

#[test]
fn every_catalogued_mutant_is_caught_by_a_vector() {
    let suite = suite();
    let control = results(&run(&suite, &dmaconf::reference()));
    assert!(
        control.values().all(|c| c.is_ok()),
        "control: the reference must pass the suite"
    );
    assert_eq!(
        caught_by(&suite, &control, Bug::Nothing),
        Vec::<String>::new(),
        "control: the wrappers without a bug must pass what the reference passes"
    );
    // Two workers: the catalogue is ~40 suite runs.
    let entries: Vec<_> = CATALOGUE.iter().collect();
    let mut caught: BTreeMap<String, Vec<String>> = BTreeMap::new();
    std::thread::scope(|scope| {
        let workers: Vec<_> = entries
            .chunks(CATALOGUE.len().div_ceil(2))
            .map(|chunk| {
                let (suite, control) = (&suite, &control);
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(name, bug)| (name.to_string(), caught_by(suite, control, *bug)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for w in workers {
            caught.extend(w.join().expect("a catalogue worker"));
        }
    });
    let missed: Vec<&String> = caught
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| k)
        .collect();
    assert!(
        CATALOGUE.len() >= 25,
        "the catalogue keeps at least 25 mutants"
    );
    assert_eq!(caught.len(), CATALOGUE.len(), "catalogue names are unique");
    // Beside, not among, the vectors' trace snapshots (tests/vectors.rs allows no other file
    // in tests/snapshots/).
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("mutants");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_yaml_snapshot!("catalogue", caught));
    assert!(missed.is_empty(), "no vector catches: {missed:#?}");
}

#[test]
fn the_unobservable_mutants_stay_uncaught() {
    let suite = suite();
    let control = results(&run(&suite, &dmaconf::reference()));
    for (name, bug, why) in UNOBSERVABLE {
        let caught = caught_by(&suite, &control, *bug);
        assert!(
            caught.is_empty(),
            "{name} ({why}) is now caught, by {caught:?}: move it to the catalogue"
        );
    }
}

#[test]
fn a_panicking_implementation_is_a_crash_and_the_run_goes_on() {
    let suite = suite();
    let report = run(&suite, &mutant(Bug::LinkPanics));
    let got = results(&report);
    assert_eq!(
        got.get(&(Profile::Semantic, "link-single-aligned-bidir".into())),
        Some(&ResultClass::Crash)
    );
    // Vectors that never link still pass: the crash did not stop the run.
    assert_eq!(
        got.get(&(Profile::Semantic, "try-alloc-aligned-one-granule".into())),
        Some(&ResultClass::Pass)
    );
    assert_eq!(
        report.vectors.len(),
        run(&suite, &dmaconf::reference()).vectors.len()
    );
    assert!(!report.ok());
}
/// `dmaconf run --fail-nth`: the reference unwinds cleanly from every injected failure of the
/// two-step vectors; a mutant that drops its unwinding on the error path leaves PTEs or slots.
#[test]
fn a_leak_on_an_error_path_fails_the_fail_nth_sweep() {
    use dmaconf_engine::fail_nth::sweep;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = load_suite(&root.join("vectors"));
    let sweep_all = |implementation: &Implementation| {
        let mut problems = Vec::new();
        let mut runs = 0;
        for l in &suite.vectors {
            let Ok(v) = &l.vector else { continue };
            if v.misuse.is_some() || !dmaconf_engine::Door::unmet(implementation, v).is_empty() {
                continue;
            }
            let s = sweep(v, &suite.presets, implementation);
            runs += s.runs;
            problems.extend(s.problems.into_iter().map(|p| format!("{}: {p}", s.id)));
        }
        (runs, problems)
    };
    let (runs, problems) = sweep_all(&mutant(Bug::LeaksOnErrorPath));
    assert!(runs > 0, "no vector reaches a fallible platform call");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("left bounce slots behind"))
            && problems
                .iter()
                .any(|p| p.contains("left page-table entries behind")),
        "the leaking mutant passes the sweep: {problems:#?}"
    );
    // Control: the reference behind the same wrapper, without the bug.
    let (_, clean) = sweep_all(&mutant(Bug::Nothing));
    assert!(clean.is_empty(), "{clean:#?}");
}
