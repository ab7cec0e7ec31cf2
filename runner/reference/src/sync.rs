//! `dma_iova_sync`. SYNC-01, SYNC-02.

use dmaconf_platform::{IovaState, Platform};

use crate::device::Device;

/// SYNC-01, SYNC-02; mirrors `dma_iova_sync`: on a non-coherent device one barrier (completing
/// the cache cleans that link issued without one), then `iotlb_sync_map` of the granule-aligned
/// range around `[state.addr + offset, + size)`, whose result is returned. No cache
/// maintenance, no bounce copies, no range check.
pub fn dma_iova_sync(
    dev: &Device,
    p: &mut dyn Platform,
    state: &IovaState,
    offset: u64,
    size: u64,
) -> i32 {
    let addr = state.addr.wrapping_add(offset);
    let iova_start_pad = dev.iovad.iova_offset(addr);
    if !dev.coherent() {
        p.sync_barrier();
    }
    p.iotlb_sync_map(
        addr.wrapping_sub(iova_start_pad),
        dev.iovad.iova_align(size.wrapping_add(iova_start_pad)),
    )
}
