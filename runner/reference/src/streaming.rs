//! The streaming API beside the two-step one (`spec/6-streaming.md`): `dma_map_phys` /
//! `dma_unmap_phys` on iommu-dma (strict, or lazy through the flush queue) and on dma-direct,
//! and `dma_need_unmap`. This is what a caller falls back to when `dma_iova_try_alloc` is false
//! (MIX-01), and what passthrough (identity) domains run on.

use std::collections::{BTreeMap, VecDeque};

use dmaconf_platform::{
    Attrs, Dir, DomainType, Platform, PlatformFacts, WarnCode, DMA_MAPPING_ERROR,
};

use crate::device::Device;
use crate::iova::IovaDomain;
use crate::prot::dma_info_to_prot;
use crate::seeded::{self, SeededBug};
use crate::swiotlb::{dev_use_swiotlb, iova_unaligned, map_swiotlb, tbl_unmap_single};

/// `IOVA_DEFAULT_FQ_SIZE`: per-CPU ring slots (one stays empty, so 255 entries fit).
pub const FQ_SIZE: usize = 256;
/// `IOVA_DEFAULT_FQ_TIMEOUT`: 10 ms, turned into jiffies by `msecs_to_jiffies` when the timer
/// is armed (`queue_iova`).
pub const FQ_TIMEOUT_MS: u64 = 10;
/// `CONFIG_HZ` the model assumes: 250, Debian's kernels on amd64 and arm64 (the kernel door's
/// 7.3.4 config). A model assumption, stated in spec/1-platform.md § Time.
pub const HZ: u64 = 250;
/// One jiffy in ns; the machine's clock starts at 0, on a jiffy boundary.
const JIFFY_NS: u64 = 1_000_000_000 / HZ;

/// When a timer armed at `now_ns` for `ms` milliseconds fires: `mod_timer(jiffies +
/// msecs_to_jiffies(ms))` expires on the tick where `jiffies` reaches that value
/// (`msecs_to_jiffies` rounds up). At HZ=250 the 10 ms flush-queue timer fires 8 to 12 ms after
/// it was armed, depending on where in its jiffy the arming fell.
pub fn timer_expiry_ns(now_ns: u64, ms: u64) -> u64 {
    let timeout = (ms * HZ).div_ceil(1000);
    (now_ns / JIFFY_NS)
        .saturating_add(timeout)
        .saturating_mul(JIFFY_NS)
}

/// One flush-queue entry: an IOVA range unmapped but not yet invalidated.
#[derive(Clone, Debug)]
struct FqEntry {
    pfn: u64,
    pages: u64,
    /// `fq_flush_start_cnt` when queued: reusable once `fq_flush_finish_cnt` passes it.
    counter: u64,
}

/// STREAM-04; the per-CPU flush queues of a lazy (`IOMMU_DOMAIN_DMA_FQ`) domain, with their
/// timer. Mirrors `queue_iova`, `fq_ring_free_locked`, `fq_flush_iotlb`, `fq_flush_timeout`.
#[derive(Clone, Debug, Default)]
pub struct FlushQueue {
    rings: BTreeMap<u32, VecDeque<FqEntry>>,
    start_cnt: u64,
    finish_cnt: u64,
    /// When the armed timer fires (ns), if armed.
    timer: Option<u64>,
}

impl FlushQueue {
    /// Entries of `cpu`'s ring whose flush has completed go back to the allocator.
    fn ring_free(&mut self, cpu: u32, iovad: &mut IovaDomain, free_cpu: u32) {
        let finish = self.finish_cnt;
        let ring = self.rings.entry(cpu).or_default();
        while ring.front().is_some_and(|e| e.counter < finish) {
            if let Some(e) = ring.pop_front() {
                iovad.free_iova_fast(free_cpu, e.pfn, e.pages);
            }
        }
    }

    fn flush_iotlb(&mut self, p: &mut dyn Platform) {
        self.start_cnt += 1;
        p.flush_iotlb_all();
        self.finish_cnt += 1;
    }

    /// Mirrors `queue_iova`.
    fn queue(&mut self, p: &mut dyn Platform, iovad: &mut IovaDomain, pfn: u64, pages: u64) {
        let cpu = p.current_cpu();
        self.ring_free(cpu, iovad, cpu);
        if self.rings.get(&cpu).map_or(0, VecDeque::len) >= FQ_SIZE - 1 {
            self.flush_iotlb(p);
            self.ring_free(cpu, iovad, cpu);
        }
        let counter = self.start_cnt;
        self.rings.entry(cpu).or_default().push_back(FqEntry {
            pfn,
            pages,
            counter,
        });
        if self.timer.is_none() {
            self.timer = Some(timer_expiry_ns(p.now_ns(), FQ_TIMEOUT_MS));
        }
    }

    /// Mirrors `fq_flush_timeout` when the clock has reached the armed timer.
    pub fn advance(&mut self, p: &mut dyn Platform, iovad: &mut IovaDomain, now_ns: u64) {
        let early = if seeded::active(SeededBug::FqTimerOneJiffyEarly) {
            JIFFY_NS
        } else {
            0
        };
        if self
            .timer
            .is_some_and(|t| now_ns.saturating_add(early) >= t)
        {
            self.timer = None;
            self.flush_iotlb(p);
            let cpu = p.current_cpu();
            let cpus: Vec<u32> = self.rings.keys().copied().collect();
            for c in cpus {
                self.ring_free(c, iovad, cpu);
            }
        }
    }

    /// Ranges waiting in the queues (for tests and reports).
    pub fn queued(&self) -> usize {
        self.rings.values().map(VecDeque::len).sum()
    }
}

/// STREAM-01, STREAM-02; mirrors `iommu_dma_map_phys` + `__iommu_dma_map`.
pub fn iommu_map_phys(
    dev: &mut Device,
    p: &mut dyn Platform,
    phys: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
) -> u64 {
    let coherent = dev.coherent();
    let prot = dma_info_to_prot(dir, coherent, attrs);
    let mut phys = phys;
    // The whole buffer bounces when an untrusted (or kmalloc-unsafe) device maps an unaligned
    // range; MMIO never bounces; REQUIRE_COHERENT refuses to.
    if !attrs.contains(Attrs::MMIO)
        && dev_use_swiotlb(dev, size, dir)
        && iova_unaligned(dev, phys, size)
    {
        if attrs.contains(Attrs::REQUIRE_COHERENT) {
            return DMA_MAPPING_ERROR;
        }
        match map_swiotlb(dev, p, phys, size) {
            Some(bounce) => phys = bounce,
            None => return DMA_MAPPING_ERROR,
        }
    }
    if !coherent && !attrs.intersects(Attrs::SKIP_CPU_SYNC | Attrs::MMIO) {
        p.sync_for_device(phys, size, dir);
        p.sync_barrier();
    }
    let iova = iommu_dma_map(dev, p, phys, size, prot);
    if iova == DMA_MAPPING_ERROR && !attrs.intersects(Attrs::MMIO | Attrs::REQUIRE_COHERENT) {
        tbl_unmap_single(dev, p, phys, size, dir, attrs);
    }
    iova
}

/// Mirrors `__iommu_dma_map`: refuse a `min_align_mask` wider than the granule, allocate
/// `iova_align(size + off)` under the streaming mask, `iommu_map` (map + `iotlb_sync_map`, the
/// map rolled back if the sync fails), free the IOVA at once on failure.
fn iommu_dma_map(
    dev: &mut Device,
    p: &mut dyn Platform,
    phys: u64,
    size: u64,
    prot: dmaconf_platform::Prot,
) -> u64 {
    if dev.facts.min_align_mask > dev.iovad.mask() {
        p.warn(WarnCode::STREAM_MIN_ALIGN_UNSUPPORTED);
        return DMA_MAPPING_ERROR;
    }
    let iova_off = dev.iovad.iova_offset(phys);
    let len = dev.iovad.iova_align(size.wrapping_add(iova_off));
    let cpu = p.current_cpu();
    let mask = dev.dma_mask();
    let iova =
        dev.iovad
            .iommu_dma_alloc_iova(cpu, &dev.facts, &mut dev.pci_32bit_workaround, len, mask);
    if iova == 0 {
        return DMA_MAPPING_ERROR;
    }
    let base = phys.wrapping_sub(iova_off);
    let mut ret = p.iommu_map(iova, base, len, prot);
    if ret == 0 {
        ret = p.iotlb_sync_map(iova, len);
        if ret != 0 {
            let unmapped = p.iommu_unmap(iova, len);
            p.iotlb_sync(iova, unmapped);
        }
    }
    if ret != 0 {
        let shift = dev.iovad.shift();
        dev.iovad.free_iova_fast(cpu, iova >> shift, len >> shift);
        return DMA_MAPPING_ERROR;
    }
    iova.wrapping_add(iova_off)
}

/// STREAM-03, STREAM-04; mirrors `iommu_dma_unmap_phys` + `__iommu_dma_unmap`.
pub fn iommu_unmap_phys(
    dev: &mut Device,
    fq: &mut FlushQueue,
    p: &mut dyn Platform,
    addr: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
) {
    if attrs.intersects(Attrs::MMIO | Attrs::REQUIRE_COHERENT) {
        iommu_dma_unmap(dev, fq, p, addr, size);
        return;
    }
    let phys = p.iova_to_phys(addr);
    if phys == 0 {
        p.warn(WarnCode::STREAM_UNMAP_UNTRANSLATED);
        return;
    }
    if !attrs.contains(Attrs::SKIP_CPU_SYNC) && !dev.coherent() {
        p.sync_for_cpu(phys, size, dir);
        p.sync_barrier();
    }
    iommu_dma_unmap(dev, fq, p, addr, size);
    tbl_unmap_single(dev, p, phys, size, dir, attrs);
}

/// Mirrors `__iommu_dma_unmap`: unmap the granule-aligned range; strict domains invalidate and
/// free at once, lazy ones queue the IOVA until the next flush.
pub(crate) fn iommu_dma_unmap(
    dev: &mut Device,
    fq: &mut FlushQueue,
    p: &mut dyn Platform,
    addr: u64,
    size: u64,
) {
    let iova_off = dev.iovad.iova_offset(addr);
    let base = addr.wrapping_sub(iova_off);
    let len = dev.iovad.iova_align(size.wrapping_add(iova_off));
    let queued = dev.facts.domain == DomainType::DmaFq;
    let unmapped = p.iommu_unmap(base, len);
    if unmapped != len {
        p.warn(WarnCode::STREAM_UNMAP_SHORT);
    }
    let shift = dev.iovad.shift();
    if queued {
        fq.queue(p, &mut dev.iovad, base >> shift, len >> shift);
    } else {
        // The gather covers what was removed; an empty gather skips the driver.
        if unmapped != 0 {
            p.iotlb_sync(base, unmapped);
        }
        let cpu = p.current_cpu();
        dev.iovad.free_iova_fast(cpu, base >> shift, len >> shift);
    }
}

/// `dma_capable`: the last byte lies under `min_not_zero(dma_mask, bus_dma_limit)`.
fn dma_capable(facts: &PlatformFacts, addr: u64, size: u64) -> bool {
    if addr == DMA_MAPPING_ERROR {
        return false;
    }
    let end = addr.wrapping_add(size).wrapping_sub(1);
    let mask = if facts.dma_mask == 0 {
        crate::iova::DMA_BIT_MASK_32
    } else {
        facts.dma_mask
    };
    let limit = match facts.bus_dma_limit {
        0 => mask,
        b => mask.min(b),
    };
    end <= limit
}

/// STREAM-16; `phys_to_dma` on dma-direct: the device's one `dma_range_map` region starts at
/// CPU address `dma_offset` and bus address 0 and runs to the top, so memory below the offset
/// has no bus address (`translate_phys_to_dma` gives `DMA_MAPPING_ERROR`, which `dma_capable`
/// rejects). Without a map the bus address is the physical address.
pub fn phys_to_dma(facts: &PlatformFacts, phys: u64) -> u64 {
    match facts.dma_offset {
        0 => phys,
        off if phys >= off => phys - off,
        _ => DMA_MAPPING_ERROR,
    }
}

/// STREAM-16; `dma_to_phys` on dma-direct: the bus address back to the CPU physical address.
pub fn dma_to_phys(facts: &PlatformFacts, addr: u64) -> u64 {
    addr.wrapping_add(facts.dma_offset)
}

/// The dma-direct side of a device (no IOMMU translation): whether a bounce ever cleared its
/// skip-sync flag (`dma_reset_need_sync`).
#[derive(Clone, Debug, Default)]
pub struct Direct {
    pub bounced: bool,
}

/// STREAM-05, STREAM-15, STREAM-16; mirrors `dma_direct_map_phys` (no memory encryption, no
/// kmalloc bouncing): a forced pool bounces everything; otherwise the bus address is
/// `phys_to_dma(phys)`, checked by `dma_capable`.
pub fn direct_map_phys(
    direct: &mut Direct,
    p: &mut dyn Platform,
    phys: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
) -> u64 {
    direct_map_phys_flush(direct, p, phys, size, dir, attrs, true)
}

/// `dma_direct_map_phys` with its `flush` argument: `dma_direct_map_sg` passes false and issues
/// one barrier after the last segment.
pub fn direct_map_phys_flush(
    direct: &mut Direct,
    p: &mut dyn Platform,
    phys: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
    flush: bool,
) -> u64 {
    let facts = p.facts();
    // STREAM-15: a forced pool bounces all RAM, and cannot take MMIO or REQUIRE_COHERENT.
    if facts.swiotlb_force {
        if attrs.intersects(Attrs::MMIO | Attrs::REQUIRE_COHERENT) {
            return DMA_MAPPING_ERROR;
        }
        return direct_swiotlb_map(direct, p, &facts, phys, size, dir, attrs);
    }
    let dma = phys_to_dma(&facts, phys);
    if attrs.contains(Attrs::MMIO) {
        if !dma_capable(&facts, dma, size) {
            p.warn(WarnCode::DIRECT_OVERFLOW);
            return DMA_MAPPING_ERROR;
        }
        return dma;
    }
    if !dma_capable(&facts, dma, size) {
        if facts.swiotlb && !attrs.contains(Attrs::REQUIRE_COHERENT) {
            return direct_swiotlb_map(direct, p, &facts, phys, size, dir, attrs);
        }
        p.warn(WarnCode::DIRECT_OVERFLOW);
        return DMA_MAPPING_ERROR;
    }
    if !facts.coherent && !attrs.intersects(Attrs::SKIP_CPU_SYNC | Attrs::MMIO) {
        p.sync_for_device(phys, size, dir);
        if flush {
            p.sync_barrier();
        }
    }
    dma
}

/// Mirrors `swiotlb_map` for dma-direct: a slot with no alignment beyond the pool's own, the
/// copy, a capability check of the bounce address, then cache maintenance on the bounce.
fn direct_swiotlb_map(
    direct: &mut Direct,
    p: &mut dyn Platform,
    facts: &PlatformFacts,
    phys: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
) -> u64 {
    let mut bounce = 0u64;
    if p.bounce_alloc(phys, size, 0, facts.min_align_mask, &mut bounce) != 0 {
        return DMA_MAPPING_ERROR;
    }
    direct.bounced = true;
    p.copy(bounce, phys, size);
    let dma = phys_to_dma(facts, bounce);
    if !dma_capable(facts, dma, size) {
        // Released without copying back, then "swiotlb addr overflow".
        p.bounce_free(bounce, size);
        p.warn(WarnCode::DIRECT_OVERFLOW);
        return DMA_MAPPING_ERROR;
    }
    if !facts.coherent && !attrs.contains(Attrs::SKIP_CPU_SYNC) {
        p.sync_for_device(bounce, size, dir);
        p.sync_barrier();
    }
    dma
}

/// STREAM-05; mirrors `dma_direct_unmap_phys`: MMIO and REQUIRE_COHERENT mappings need
/// nothing; otherwise CPU-side maintenance unless SKIP_CPU_SYNC (invalidate, barrier, then the
/// bounce copy-back), and the bounce slot is released without a second copy.
pub fn direct_unmap_phys(p: &mut dyn Platform, addr: u64, size: u64, dir: Dir, attrs: Attrs) {
    direct_unmap_phys_flush(p, addr, size, dir, attrs, true)
}

/// `dma_direct_unmap_phys` with its `flush` argument (false from `dma_direct_unmap_sg`).
pub fn direct_unmap_phys_flush(
    p: &mut dyn Platform,
    addr: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
    flush: bool,
) {
    if attrs.intersects(Attrs::MMIO | Attrs::REQUIRE_COHERENT) {
        return;
    }
    let facts = p.facts();
    let phys = dma_to_phys(&facts, addr);
    let bounced = p.is_bounce(phys);
    if !attrs.contains(Attrs::SKIP_CPU_SYNC) {
        if !facts.coherent {
            p.sync_for_cpu(phys, size, dir);
            if flush {
                p.sync_barrier();
            }
        }
        if bounced && (dir == Dir::FROM_DEVICE || dir == Dir::BIDIRECTIONAL) {
            let orig = p.bounce_orig(phys);
            if orig != 0 {
                if !facts.coherent {
                    p.sync_barrier();
                }
                p.copy(orig, phys, size);
            }
        }
    }
    if bounced {
        p.bounce_free(phys, size);
    }
}

/// Which way a `dma_sync_single_*` call goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncFor {
    Cpu,
    Device,
}

/// STREAM-07; mirrors `__dma_sync_single_for_{cpu,device}` and their iommu-dma and dma-direct
/// halves. `need_sync` is `dma_dev_need_sync` (the skip-sync flag: coherent and never bounced
/// means the call does nothing at all). On iommu-dma only `addr` is translated: the range is
/// assumed physically contiguous from there. For the CPU: invalidate + barrier, then the bounce
/// copy-back; for the device: the bounce copy-in, then clean + barrier.
#[allow(clippy::too_many_arguments)]
pub fn sync_single(
    p: &mut dyn Platform,
    need_sync: bool,
    iommu: Option<&Device>,
    addr: u64,
    size: u64,
    dir: Dir,
    to: SyncFor,
) {
    if !need_sync || dir.0 >= Dir::NONE.0 {
        return;
    }
    let coherent = p.facts().coherent;
    let phys = match iommu {
        Some(dev) => {
            if coherent && !dev_use_swiotlb(dev, size, dir) {
                return;
            }
            p.iova_to_phys(addr)
        }
        None => dma_to_phys(&p.facts(), addr),
    };
    let bounced = p.is_bounce(phys);
    if to == SyncFor::Device && bounced && (dir == Dir::TO_DEVICE || dir == Dir::BIDIRECTIONAL) {
        let orig = p.bounce_orig(phys);
        if orig != 0 {
            p.copy(phys, orig, size);
        }
    }
    if !coherent {
        match to {
            SyncFor::Cpu => p.sync_for_cpu(phys, size, dir),
            SyncFor::Device => p.sync_for_device(phys, size, dir),
        }
        p.sync_barrier();
    }
    if to == SyncFor::Cpu && bounced && (dir == Dir::FROM_DEVICE || dir == Dir::BIDIRECTIONAL) {
        let orig = p.bounce_orig(phys);
        if orig != 0 {
            if !coherent {
                p.sync_barrier();
            }
            p.copy(orig, phys, size);
        }
    }
}

/// STREAM-06; mirrors `dma_need_unmap`: iommu-dma always needs the unmap; dma-direct only while
/// syncs are needed (a non-coherent device, or one that has bounced).
pub fn need_unmap(iommu_dma: bool, facts: &PlatformFacts, direct: &Direct) -> bool {
    iommu_dma || !facts.coherent || direct.bounced
}

#[cfg(test)]
mod timer_tests {
    use super::timer_expiry_ns;

    /// STREAM-04 at HZ=250: msecs_to_jiffies(10) = 3 ticks of 4 ms, counted from the tick the
    /// arming fell in, so the timer fires 8 (exclusive) to 12 ms later.
    #[test]
    fn fq_timer_fires_on_the_third_tick() {
        assert_eq!(timer_expiry_ns(0, 10), 12_000_000);
        assert_eq!(timer_expiry_ns(3_999_999, 10), 12_000_000);
        assert_eq!(timer_expiry_ns(4_000_000, 10), 16_000_000);
        // IOVA_SINGLE_FQ_TIMEOUT (s390's single queue): 1000 ms = 250 ticks.
        assert_eq!(timer_expiry_ns(0, 1000), 1_000_000_000);
    }
}
