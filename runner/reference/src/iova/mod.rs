//! IOVA allocation: the domain (`struct iova_domain`), its set-up by `iommu_dma_init_domain`,
//! `iommu_dma_alloc_iova` / `alloc_iova_fast` / `free_iova_fast`, and the MSI doorbell page taken
//! from it at probe. IOVA-01..07.
//!
//! Sizes and pfns are counted in granules. Arithmetic that is unsigned in Linux wraps here where
//! Linux's would (`limit_pfn + 1`, `limit_pfn + 1 - size`, `iova_align` of a size near 2^64).

pub mod msi;
pub mod rbtree;
pub mod rcache;

use dmaconf_platform::{errno, Platform, PlatformFacts, RegionKind};

use rbtree::IovaTree;
use rcache::{Rcaches, IOVA_RANGE_CACHE_MAX_SIZE};

/// `DMA_BIT_MASK(32)`.
pub const DMA_BIT_MASK_32: u64 = 0xFFFF_FFFF;

/// The largest granule `init_iova_domain` accepts: it BUGs when the granule exceeds
/// `PAGE_SIZE`, and no architecture with `CONFIG_IOMMU_DMA` has pages above 64 KiB.
pub const MAX_GRANULE: u64 = 64 * 1024;

/// `min_not_zero`.
fn min_not_zero(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, b) => b,
        (a, 0) => a,
        (a, b) => a.min(b),
    }
}

/// `roundup_pow_of_two` (only used for 1..=31 granules).
fn roundup_pow_of_two(n: u64) -> u64 {
    n.checked_next_power_of_two().unwrap_or(0)
}

/// `struct iova_domain` plus its rcaches: one IOVA space, shared by every state of the device.
#[derive(Clone, Debug)]
pub struct IovaDomain {
    granule: u64,
    shift: u32,
    start_pfn: u64,
    dma_32bit_pfn: u64,
    tree: IovaTree,
    rcaches: Rcaches,
}

impl IovaDomain {
    /// Mirrors `init_iova_domain` + `iova_domain_init_rcaches`: `granule` must be a power of
    /// two (callers take the lowest bit of `pgsize_bitmap`), `start_pfn` the first usable pfn.
    /// Linux BUGs on any other granule; here one that is not a power of two becomes 64 KiB so
    /// that the mask arithmetic stays defined.
    pub fn new(granule: u64, start_pfn: u64) -> IovaDomain {
        let granule = if granule.is_power_of_two() {
            granule
        } else {
            MAX_GRANULE
        };
        let shift = granule.trailing_zeros();
        let dma_32bit_pfn = 1u64.checked_shl(32u32.saturating_sub(shift)).unwrap_or(1);
        IovaDomain {
            granule,
            shift,
            start_pfn,
            dma_32bit_pfn,
            tree: IovaTree::new(start_pfn, dma_32bit_pfn, shift),
            rcaches: Rcaches::default(),
        }
    }

    /// IOVA-05; mirrors `iommu_dma_init_domain` followed by `iova_reserve_iommu_regions`:
    /// granule from `pgsize_bitmap`, `start_pfn = max(1, aperture_start >> shift)` (so IOVA 0 is
    /// never handed out), then every reserved region the platform reports is reserved:
    /// PCI windows first, then dma-range gaps (both for PCI devices only), then the IOMMU's
    /// regions, as Linux orders them. Each region `[start, end]` is widened to whole granules
    /// (`start >> shift ..= end >> shift`); for a dma-range gap Linux's `end` is the first byte
    /// of the next range, so the platform is expected to report it that way.
    ///
    /// Returns `-EINVAL` for a domain with no page size (Linux never builds one; `__ffs(0)` is
    /// undefined) or a granule above 64 KiB (Linux BUGs).
    pub fn from_platform(p: &dyn Platform, facts: &PlatformFacts) -> Result<IovaDomain, i32> {
        if facts.pgsize_bitmap == 0 {
            return Err(-errno::EINVAL);
        }
        let granule = facts.granule();
        if granule > MAX_GRANULE {
            return Err(-errno::EINVAL);
        }
        let order = granule.trailing_zeros();
        let base_pfn = (facts.aperture_start >> order).max(1);
        let mut iovad = IovaDomain::new(granule, base_pfn);

        let mut regions = Vec::new();
        for index in 0..=u32::MAX {
            match p.reserved_region(index) {
                Some(r) => regions.push(r),
                None => break,
            }
        }
        // Host-bridge windows and dma-range gaps come from iova_reserve_pci_windows, which runs
        // for PCI devices only; then the IOMMU's own regions.
        let pci_only = |k: RegionKind| matches!(k, RegionKind::PciWindow | RegionKind::DmaRangeGap);
        regions.retain(|r| facts.pci || !pci_only(r.kind));
        let rank = |k: RegionKind| match k {
            RegionKind::PciWindow => 0,
            RegionKind::DmaRangeGap => 1,
            _ => 2,
        };
        regions.sort_by_key(|r| rank(r.kind));
        for r in regions {
            // An inclusive region cannot be empty; one with end < start is malformed and
            // skipped.
            if r.end >= r.start {
                iovad.reserve_iova(iovad.iova_pfn(r.start), iovad.iova_pfn(r.end));
            }
        }
        Ok(iovad)
    }

    /// `iovad->granule`.
    pub fn granule(&self) -> u64 {
        self.granule
    }

    /// `iova_shift`.
    pub fn shift(&self) -> u32 {
        self.shift
    }

    /// `iovad->start_pfn`.
    pub fn start_pfn(&self) -> u64 {
        self.start_pfn
    }

    /// `iovad->dma_32bit_pfn`.
    pub fn dma_32bit_pfn(&self) -> u64 {
        self.dma_32bit_pfn
    }

    /// `iova_mask`.
    pub fn mask(&self) -> u64 {
        self.granule - 1
    }

    /// `iova_offset`: the in-granule offset of `x`.
    pub fn iova_offset(&self, x: u64) -> u64 {
        x & self.mask()
    }

    /// `iova_align`: `x` rounded up to a granule multiple; wraps to 0 near 2^64 like `ALIGN`.
    pub fn iova_align(&self, x: u64) -> u64 {
        x.wrapping_add(self.mask()) & !self.mask()
    }

    /// `iova_align_down`.
    pub fn iova_align_down(&self, x: u64) -> u64 {
        x & !self.mask()
    }

    /// `iova_pfn`.
    pub fn iova_pfn(&self, iova: u64) -> u64 {
        iova >> self.shift
    }

    /// The tree (allocated, cached and reserved ranges, cached nodes, `max32_alloc_size`).
    pub fn tree(&self) -> &IovaTree {
        &self.tree
    }

    /// The range caches.
    pub fn rcaches(&self) -> &Rcaches {
        &self.rcaches
    }

    /// IOVA-05; mirrors `reserve_iova`.
    pub fn reserve_iova(&mut self, pfn_lo: u64, pfn_hi: u64) {
        self.tree.reserve(pfn_lo, pfn_hi);
    }

    /// IOVA-01, IOVA-02, IOVA-04; mirrors `alloc_iova_fast` (`limit_pfn` inclusive): sizes below
    /// 32 granules are rounded up to a power of two, the CPU's rcache is tried first (a pfn with
    /// `pfn <= limit_pfn + 1 - size`), then the tree; on failure with `flush_rcache` every CPU's
    /// cached ranges and the depots go back to the tree and the tree is tried once more.
    /// Returns the pfn, 0 on failure.
    pub fn alloc_iova_fast(
        &mut self,
        cpu: u32,
        size: u64,
        limit_pfn: u64,
        flush_rcache: bool,
    ) -> u64 {
        let size = if size < (1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1)) {
            roundup_pow_of_two(size)
        } else {
            size
        };
        let pfn = self.rcaches.get(cpu, size, limit_pfn.wrapping_add(1));
        if pfn != 0 {
            return pfn;
        }
        let mut flush_rcache = flush_rcache;
        loop {
            if let Some(pfn) = self.tree.alloc(size, limit_pfn) {
                return pfn;
            }
            if !flush_rcache {
                return 0;
            }
            flush_rcache = false;
            for c in self.rcaches.cpus() {
                self.rcaches.free_cpu_cached(c, &mut self.tree);
            }
            self.rcaches.free_global_cached(&mut self.tree);
        }
    }

    /// IOVA-04; mirrors `free_iova_fast`: cache the range for reuse if it is at most 32
    /// granules (bucket `order_base_2(size)`), else remove the node containing `pfn` from the
    /// tree. Nothing checks that `pfn` was allocated.
    pub fn free_iova_fast(&mut self, cpu: u32, pfn: u64, size: u64) {
        if self.rcaches.insert(cpu, pfn, size) {
            return;
        }
        self.tree.free(pfn);
    }

    /// TRYALLOC-07, IOVA-03; mirrors `iommu_dma_alloc_iova`: `size` bytes (granule multiple)
    /// under `min_not_zero(dma_mask, bus_dma_limit)`, clamped to the aperture end when the
    /// domain forces its aperture. A PCI device first tries below 4 GiB without flushing the
    /// caches; the first failure there turns that attempt off for good (`pci_32bit_workaround`).
    /// Returns the IOVA, 0 on failure.
    pub fn iommu_dma_alloc_iova(
        &mut self,
        cpu: u32,
        facts: &PlatformFacts,
        pci_32bit_workaround: &mut bool,
        size: u64,
        dma_limit: u64,
    ) -> u64 {
        let shift = self.shift;
        let iova_len = size >> shift;
        let mut dma_limit = min_not_zero(dma_limit, facts.bus_dma_limit);
        if facts.force_aperture {
            dma_limit = dma_limit.min(facts.aperture_end);
        }
        if dma_limit > DMA_BIT_MASK_32 && *pci_32bit_workaround {
            let pfn = self.alloc_iova_fast(cpu, iova_len, DMA_BIT_MASK_32 >> shift, false);
            if pfn != 0 {
                return pfn << shift;
            }
            // Linux prints "Using %d-bit DMA addresses" (a notice, not a WARN).
            *pci_32bit_workaround = false;
        }
        let pfn = self.alloc_iova_fast(cpu, iova_len, dma_limit >> shift, true);
        pfn << shift
    }
}
