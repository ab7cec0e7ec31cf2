//! The platform interface: the only line an implementation of the DMA layer crosses.
//!
//! Two traits live here. [`Platform`] is what a DMA layer may *call* (the IOMMU, the CPU caches,
//! the SWIOTLB slot allocator, memory copies, the WARN channel, read-only facts). [`DmaApi`] is
//! what a DMA layer *implements* (the two-step IOVA calls of `spec/3-*.md`).
//!
//! Every type that crosses the line is a plain integer, a bit set in a transparent newtype, or a
//! `#[repr(C)]` struct of those, so both traits map one-to-one onto a C function table and a
//! Python protocol (`spec/INTERPRETING.md`, "Implementation interface"). Results are negative
//! errno values, never `Result`; booleans are `bool`.
#![forbid(unsafe_code)]

mod types;
pub use types::*;

/// What a DMA layer may call. The machine implements it; the engine hands a `&mut dyn Platform`
/// to every [`DmaApi`] call. Rows follow BRIEF.md's interface table.
pub trait Platform {
    /// Read-only facts about the device, its IOMMU domain and the architecture.
    fn facts(&self) -> PlatformFacts;
    /// The `index`-th reserved IOVA region of the device (PCI host-bridge windows, dma-range
    /// gaps, IOMMU_RESV regions), in bus addresses, inclusive. `None` past the last one.
    fn reserved_region(&self, index: u32) -> Option<Region>;
    /// The CPU the current call runs on (per-CPU caches in the IOVA allocator and SWIOTLB areas).
    fn current_cpu(&self) -> u32;
    /// Platform time in nanoseconds (explicit `time.advance` steps move it), for timers such as
    /// the flush queue's. A platform without time reports 0.
    fn now_ns(&self) -> u64 {
        0
    }

    /// Models `iommu_map_nosync`: install translations for `[iova, iova+len)` to
    /// `[phys, phys+len)`, rolling back what it installed on failure. No IOTLB work.
    /// Returns 0 or a negative errno whose value follows the preset's page-table backend.
    fn iommu_map(&mut self, iova: u64, phys: u64, len: u64, prot: Prot) -> i32;
    /// Models `iommu_sync_map` (the driver's `iotlb_sync_map`): makes new translations in
    /// `[iova, iova+len)` visible to the device on presets that need it. Returns 0 or -errno.
    fn iotlb_sync_map(&mut self, iova: u64, len: u64) -> i32;
    /// Models `iommu_unmap_fast` into a gather: clears translations, returns the bytes unmapped.
    /// The device may still use them until [`Platform::iotlb_sync`] covers them.
    fn iommu_unmap(&mut self, iova: u64, len: u64) -> u64;
    /// Models `iommu_iotlb_sync` of a gather covering `[iova, iova+len)`.
    fn iotlb_sync(&mut self, iova: u64, len: u64);
    /// Models the flush queue's `flush_iotlb_all`.
    fn flush_iotlb_all(&mut self);
    /// Models `iommu_iova_to_phys`: the physical address `iova` translates to, or 0.
    fn iova_to_phys(&self, iova: u64) -> u64;

    /// Models `arch_sync_dma_for_device` (lowered per architecture by the machine).
    fn sync_for_device(&mut self, phys: u64, len: u64, dir: Dir);
    /// Models `arch_sync_dma_for_cpu`.
    fn sync_for_cpu(&mut self, phys: u64, len: u64, dir: Dir);
    /// Models `arch_sync_dma_flush` (arm64 `dsb sy`; a no-op elsewhere).
    fn sync_barrier(&mut self);

    /// Models the slot search of `swiotlb_tbl_map_single`. On success writes the bounce address
    /// (with the preserved `min_align_mask` offset) to `slot` and returns 0; else -errno.
    /// Does not copy: the DMA layer copies with [`Platform::copy`].
    fn bounce_alloc(
        &mut self,
        orig: u64,
        len: u64,
        alloc_align_mask: u64,
        min_align_mask: u64,
        slot: &mut u64,
    ) -> i32;
    /// Models `swiotlb_release_slots` for an allocation returned by `bounce_alloc`.
    fn bounce_free(&mut self, slot: u64, len: u64);
    /// Models `swiotlb_find_pool`: is `phys` inside a bounce pool?
    fn is_bounce(&self, phys: u64) -> bool;
    /// The original address recorded for the bounce byte at `phys` (`orig_addr` of its slot plus
    /// the offset into it), or 0 if `phys` is not a live bounce byte.
    fn bounce_orig(&self, phys: u64) -> u64;

    /// Copy `len` bytes of physical memory (bounce copies). Recorded as an event.
    fn copy(&mut self, dst: u64, src: u64, len: u64);
    /// Fill `len` bytes with `byte` (padding zeroing for untrusted devices). Recorded.
    fn fill(&mut self, dst: u64, byte: u8, len: u64);

    /// `pci_p2pdma_state` for the page holding `phys`: a [`p2p`] map type (Linux numbering).
    /// A platform without peer memory answers [`p2p::NONE`] everywhere.
    fn p2p_type(&self, _phys: u64) -> u32 {
        p2p::NONE
    }
    /// The P2P provider's `bus_offset` for `phys` (`pci_p2pdma_bus_addr_map` adds it); 0 when
    /// `phys` is no provider's.
    fn p2p_bus_offset(&self, _phys: u64) -> u64 {
        0
    }

    /// A WARN-class diagnostic (`WARN_ON*` in Linux); codes from the closed list in
    /// `spec/2-outcomes.md` and [`WarnCode`].
    fn warn(&mut self, code: WarnCode);
}

/// What a DMA layer implements: the two-step IOVA API of `spec/`. One instance serves one
/// device for one vector; [`DmaApi::probe`] runs once before the first step.
///
/// The `IovaState` belongs to the caller (the engine), exactly as `struct dma_iova_state`
/// belongs to the driver in Linux; the implementation fills it and the engine observes it.
pub trait DmaApi {
    /// Device probe: set up the IOVA domain from the platform facts (`iommu_dma_init_domain`).
    /// Returns 0 or -errno.
    fn probe(&mut self, p: &mut dyn Platform) -> i32;
    /// `dma_iova_try_alloc`. TRYALLOC-* rules.
    fn iova_try_alloc(
        &mut self,
        p: &mut dyn Platform,
        state: &mut IovaState,
        phys: u64,
        size: u64,
    ) -> bool;
    /// `dma_iova_link`. LINK-* rules. Returns 0 or -errno.
    #[allow(clippy::too_many_arguments)]
    fn iova_link(
        &mut self,
        p: &mut dyn Platform,
        state: &mut IovaState,
        phys: u64,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> i32;
    /// `dma_iova_sync`. SYNC-* rules. Returns 0 or -errno.
    fn iova_sync(&mut self, p: &mut dyn Platform, state: &IovaState, offset: u64, size: u64)
        -> i32;
    /// `dma_iova_unlink`. UNLINK-* rules.
    #[allow(clippy::too_many_arguments)]
    fn iova_unlink(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    );
    /// `dma_iova_destroy`. DESTROY-* rules.
    fn iova_destroy(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        mapped_len: u64,
        dir: Dir,
        attrs: Attrs,
    );
    /// `dma_iova_free`. FREE-* rules.
    fn iova_free(&mut self, p: &mut dyn Platform, state: &IovaState);
    /// `dma_map_phys` (streaming). STREAM-* rules. Returns the DMA address, or
    /// [`DMA_MAPPING_ERROR`]. An implementation without the streaming API keeps this default
    /// and does not declare the `streaming` capability.
    fn map_phys(
        &mut self,
        _p: &mut dyn Platform,
        _phys: u64,
        _size: u64,
        _dir: Dir,
        _attrs: Attrs,
    ) -> u64 {
        DMA_MAPPING_ERROR
    }
    /// `dma_unmap_phys` of a `map_phys` result. STREAM-* rules.
    fn unmap_phys(
        &mut self,
        _p: &mut dyn Platform,
        _addr: u64,
        _size: u64,
        _dir: Dir,
        _attrs: Attrs,
    ) {
    }
    /// `dma_sync_single_for_cpu` of (part of) a `map_phys` mapping. STREAM-07.
    fn sync_single_for_cpu(&mut self, _p: &mut dyn Platform, _addr: u64, _size: u64, _dir: Dir) {}
    /// `dma_sync_single_for_device` of (part of) a `map_phys` mapping. STREAM-07.
    fn sync_single_for_device(&mut self, _p: &mut dyn Platform, _addr: u64, _size: u64, _dir: Dir) {
    }
    /// `dma_map_sg` (`__dma_map_sg_attrs`, the value `dma_map_sgtable` returns): map the entries
    /// of `segs` and return the number of DMA segments written at the front of `segs`, or a
    /// negative errno (`dma_map_sg_attrs` reports any negative as 0). STREAM-08..STREAM-12.
    fn map_sg(
        &mut self,
        _p: &mut dyn Platform,
        _segs: &mut [SgEntry],
        _dir: Dir,
        _attrs: Attrs,
    ) -> i32 {
        -errno::EOPNOTSUPP
    }
    /// `dma_unmap_sg` of a list `map_sg` mapped, with all its original entries. STREAM-08..12.
    fn unmap_sg(&mut self, _p: &mut dyn Platform, _segs: &mut [SgEntry], _dir: Dir, _attrs: Attrs) {
    }
    /// `dma_need_unmap`: must the caller keep DMA addresses to unmap them? STREAM-06.
    fn need_unmap(&mut self, _p: &mut dyn Platform) -> bool {
        true
    }
    /// `dma_need_sync(dev, addr)`: must the caller sync the streaming mapping at `addr`?
    /// STREAM-13. The default (true) is always safe: a needless sync is correct.
    fn need_sync(&mut self, _p: &mut dyn Platform, _addr: u64) -> bool {
        true
    }
    /// `dma_map_page_attrs`: `dma_map_phys` of a page's memory, which may not be MMIO (the
    /// wrapper refuses `DMA_ATTR_MMIO` before anything happens). STREAM-14.
    fn map_page_attrs(
        &mut self,
        p: &mut dyn Platform,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        if attrs.contains(Attrs::MMIO) {
            return DMA_MAPPING_ERROR;
        }
        self.map_phys(p, phys, size, dir, attrs)
    }
    /// `dma_unmap_page_attrs`: with `DMA_ATTR_MMIO` it returns at once, doing nothing; otherwise
    /// `dma_unmap_phys`. STREAM-14.
    fn unmap_page_attrs(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        if attrs.contains(Attrs::MMIO) {
            return;
        }
        self.unmap_phys(p, addr, size, dir, attrs)
    }
    /// `dma_map_resource`: `dma_map_phys` with `DMA_ATTR_MMIO` added. STREAM-14.
    fn map_resource(
        &mut self,
        p: &mut dyn Platform,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        self.map_phys(p, phys, size, dir, attrs | Attrs::MMIO)
    }
    /// `dma_unmap_resource`: `dma_unmap_phys` with `DMA_ATTR_MMIO` added. STREAM-14.
    fn unmap_resource(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        self.unmap_phys(p, addr, size, dir, attrs | Attrs::MMIO)
    }
    /// Time moved to `now_ns`: run the timers that expired (the flush queue's). STREAM-04.
    fn advance_time(&mut self, _p: &mut dyn Platform, _now_ns: u64) {}
    /// `dma_use_iova` (a header inline in Linux). STATE-02.
    fn use_iova(&self, state: &IovaState) -> bool {
        dma_use_iova(state)
    }
    /// `dma_iova_size` (a header inline in Linux). STATE-03.
    fn iova_size(&self, state: &IovaState) -> u64 {
        dma_iova_size(state)
    }
}

/// `dma_use_iova`: the state holds an IOVA allocation (any bit of `__size`, flag included).
/// STATE-02.
pub fn dma_use_iova(state: &IovaState) -> bool {
    state.size != 0
}

/// `dma_iova_size`: the caller's size without the SWIOTLB flag. STATE-03.
pub fn dma_iova_size(state: &IovaState) -> u64 {
    state.size & !DMA_IOVA_USE_SWIOTLB
}
