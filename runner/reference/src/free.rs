//! `dma_iova_free`. FREE-01.

use dmaconf_platform::{dma_iova_size, IovaState, Platform};

use crate::device::Device;

/// FREE-01; mirrors `dma_iova_free` (→ `iommu_dma_free_iova` → `free_iova_fast`): give back
/// `iova_align(dma_iova_size + pad)` bytes starting at the granule of `state.addr`, to the
/// current CPU's range cache (at most 32 granules) or the tree. No unmap, no cache or IOTLB
/// work, and the state is left as it is (`dma_use_iova` stays true). Nothing checks that the
/// range was allocated: a zeroed state caches pfn 0, as in Linux.
pub fn dma_iova_free(dev: &mut Device, p: &mut dyn Platform, state: &IovaState) {
    let iova_start_pad = dev.iovad.iova_offset(state.addr);
    let size = dma_iova_size(state);
    let iova = state.addr.wrapping_sub(iova_start_pad);
    let len = dev.iovad.iova_align(size.wrapping_add(iova_start_pad));
    let cpu = p.current_cpu();
    let pfn = dev.iovad.iova_pfn(iova);
    let pages = dev.iovad.iova_pfn(len);
    dev.iovad.free_iova_fast(cpu, pfn, pages);
}
