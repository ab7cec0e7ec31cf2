//! `dma_iova_link`. LINK-01..10, STATE-04.

use dmaconf_platform::{errno, Attrs, Dir, IovaState, Platform, WarnCode, DMA_IOVA_USE_SWIOTLB};

use crate::device::Device;
use crate::prot::dma_info_to_prot;
use crate::swiotlb;

/// LINK-01..05, LINK-08, LINK-10; mirrors `dma_iova_link`.
///
/// Checks, in Linux's order, each returning before any platform call but the WARN:
/// 1. LINK-01: `phys` not granule-aligned at `offset > 0` → WARN, `-EIO`;
/// 2. LINK-02: `REQUIRE_COHERENT` on a state that already bounced → WARN, `-EOPNOTSUPP`;
/// 3. LINK-03: `REQUIRE_COHERENT` on a non-coherent device → `-EOPNOTSUPP`;
/// 4. LINK-04/LINK-09: bouncing needed (`dev_use_swiotlb` and `phys` or `size` not
///    granule-aligned) → `-EPERM` with `MMIO`/`REQUIRE_COHERENT`, else the SWIOTLB path.
///
/// Both WARNs are `WARN_ON_ONCE` in Linux (printed once per boot); the model logs them every
/// time (spec/2-outcomes.md, "WARN codes").
///
/// Otherwise LINK-05: one [`link_range`] of the granule-expanded range at
/// `state.addr + offset - pad`. Nothing checks `offset + size` against the state's size
/// (LINK-10). Address sums wrap as `dma_addr_t`/`size_t` do.
#[allow(clippy::too_many_arguments)]
pub fn dma_iova_link(
    dev: &mut Device,
    p: &mut dyn Platform,
    state: &mut IovaState,
    phys: u64,
    offset: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
) -> i32 {
    let iova_start_pad = dev.iovad.iova_offset(phys);

    if iova_start_pad != 0 && offset > 0 {
        p.warn(WarnCode::LINK_UNALIGNED_AT_OFFSET);
        return -errno::EIO;
    }
    if state.size & DMA_IOVA_USE_SWIOTLB != 0 && attrs.contains(Attrs::REQUIRE_COHERENT) {
        p.warn(WarnCode::LINK_COHERENT_AFTER_BOUNCE);
        return -errno::EOPNOTSUPP;
    }
    if !dev.coherent() && attrs.contains(Attrs::REQUIRE_COHERENT) {
        return -errno::EOPNOTSUPP;
    }
    if swiotlb::dev_use_swiotlb(dev, size, dir) && swiotlb::iova_unaligned(dev, phys, size) {
        if attrs.intersects(Attrs::MMIO | Attrs::REQUIRE_COHERENT) {
            return -errno::EPERM;
        }
        return swiotlb::iova_link_swiotlb(dev, p, state, phys, offset, size, dir, attrs);
    }

    let iova = state.addr.wrapping_add(offset).wrapping_sub(iova_start_pad);
    let len = dev.iovad.iova_align(size.wrapping_add(iova_start_pad));
    link_range(
        dev,
        p,
        iova,
        phys.wrapping_sub(iova_start_pad),
        len,
        dir,
        attrs,
    )
}

/// LINK-05..08; mirrors `__dma_iova_link`: on a non-coherent device without
/// `SKIP_CPU_SYNC`/`MMIO`, `sync_for_device` on exactly `[phys, phys + len)` (the caller passes
/// the granule-expanded range) with no barrier; then one `iommu_map` with
/// [`dma_info_to_prot`]'s bits. No IOTLB work. Returns the map's result; a failed map leaves the
/// state alone and the cache maintenance done.
pub fn link_range(
    dev: &Device,
    p: &mut dyn Platform,
    iova: u64,
    phys: u64,
    len: u64,
    dir: Dir,
    attrs: Attrs,
) -> i32 {
    let prot = dma_info_to_prot(dir, dev.coherent(), attrs);
    if dev.needs_cache_maintenance(attrs) {
        p.sync_for_device(phys, len, dir);
    }
    p.iommu_map(iova, phys, len, prot)
}
