//! `dma_iova_try_alloc`. TRYALLOC-01..09, STATE-01.

use dmaconf_platform::{IovaState, Platform, WarnCode, DMA_IOVA_USE_SWIOTLB};

use crate::device::Device;

/// TRYALLOC-03; mirrors the `!CONFIG_IOMMU_DMA` header stub of `dma_iova_try_alloc`: false,
/// and the state is left exactly as the caller passed it.
pub fn stub(_state: &mut IovaState) -> bool {
    false
}

/// TRYALLOC-01, TRYALLOC-02; mirrors `dma_iova_try_alloc` for a device that is not on
/// iommu-dma (dma-direct, identity domain, or a failed probe): the state is zeroed, then false.
pub fn not_iommu_dma(state: &mut IovaState) -> bool {
    *state = IovaState::default();
    false
}

/// TRYALLOC-01, TRYALLOC-04..09, STATE-01; mirrors `dma_iova_try_alloc` on iommu-dma.
///
/// The state is zeroed first. `phys` only contributes its in-granule offset `off`; a size of 0
/// or one with bit 63 set is refused with a WARN (Linux's `WARN_ON_ONCE`, logged every time by
/// the model, spec/2-outcomes.md). Otherwise
/// `iova_align(size + off)` bytes are allocated (`iommu_dma_alloc_iova` under the streaming
/// mask) and the state becomes `{ addr: base + off, size }`. Nothing is mapped, synced or
/// invalidated. On exhaustion the state stays zero.
///
/// The kdump-only deferred-attach check is not modelled (the platform has no such fact).
pub fn dma_iova_try_alloc(
    dev: &mut Device,
    p: &mut dyn Platform,
    state: &mut IovaState,
    phys: u64,
    size: u64,
) -> bool {
    *state = IovaState::default();
    let iova_off = dev.iovad.iova_offset(phys);

    if size == 0 {
        p.warn(WarnCode::TRY_ALLOC_ZERO_SIZE);
        return false;
    }
    if size & DMA_IOVA_USE_SWIOTLB != 0 {
        p.warn(WarnCode::TRY_ALLOC_SIZE_FLAG_BIT);
        return false;
    }

    // size < 2^63 and iova_off < granule: neither the sum nor the rounding can wrap.
    let len = dev.iovad.iova_align(size.wrapping_add(iova_off));
    let mask = dev.dma_mask();
    let cpu = p.current_cpu();
    let facts = dev.facts;
    let addr =
        dev.iovad
            .iommu_dma_alloc_iova(cpu, &facts, &mut dev.pci_32bit_workaround, len, mask);
    if addr == 0 {
        return false;
    }
    state.addr = addr.wrapping_add(iova_off);
    state.size = size;
    true
}
