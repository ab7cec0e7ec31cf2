//! `dma_iova_unlink`. UNLINK-01..06.

use dmaconf_platform::{
    Attrs, Dir, IovaState, PgtableBackend, Platform, WarnCode, DMA_IOVA_USE_SWIOTLB,
};

use crate::device::Device;
use crate::seeded::{self, SeededBug};
use crate::swiotlb;

/// UNLINK-01..06; mirrors `dma_iova_unlink`.
///
/// If the state ever bounced, or the device needs CPU cache maintenance for these `attrs`, the
/// slow path ([`unlink_range_slow`]) runs first. Then always the fast part: one `iommu_unmap`
/// of the granule-aligned range around `[state.addr + offset, + size)`, a WARN if fewer bytes
/// came back (UNLINK-03), and one `iotlb_sync` of what the unmap gathered — strict even on a
/// lazy (DMA_FQ) domain. The IOVA stays allocated and the SWIOTLB flag stays set. After the
/// `iotlb_sync` the device can no longer reach the range (UNLINK-06).
pub fn dma_iova_unlink(
    dev: &Device,
    p: &mut dyn Platform,
    state: &IovaState,
    offset: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
) {
    let addr = state.addr.wrapping_add(offset);
    let iova_start_pad = dev.iovad.iova_offset(addr);

    if state.size & DMA_IOVA_USE_SWIOTLB != 0 || dev.needs_cache_maintenance(attrs) {
        unlink_range_slow(dev, p, addr, size, dir, attrs);
    }

    let size = dev.iovad.iova_align(size.wrapping_add(iova_start_pad));
    let iova = addr.wrapping_sub(iova_start_pad);
    let unmapped = p.iommu_unmap(iova, size);
    if unmapped != size {
        p.warn(WarnCode::UNLINK_SHORT_UNMAP);
    }
    if let Some((start, len)) = gathered(dev.facts.backend, iova, size, unmapped) {
        p.iotlb_sync(start, len);
    }
}

/// What `iommu_iotlb_sync` does with the gather of one `iommu_unmap_fast(iova, size)` that
/// returned `unmapped`: `Some((start, len))` if the driver's `iotlb_sync` is called (the gather
/// is non-empty, `start < end`), `None` if it is skipped.
///
/// Both page-table backends gather exactly `[iova, iova + unmapped)` (they stop at the first
/// hole). When nothing was unmapped, io-pgtable gathers nothing, while iommupt still records
/// the empty range `[iova, iova - 1]` for any non-empty, non-overflowing request: that only
/// looks non-empty at IOVA 0, where `iova - 1` wraps to `~0`, and Linux then syncs the whole
/// space (passed as length `u64::MAX`).
fn gathered(backend: PgtableBackend, iova: u64, size: u64, unmapped: u64) -> Option<(u64, u64)> {
    if unmapped == 0 {
        let range_ok = size != 0 && iova.checked_add(size - 1).is_some();
        return match backend {
            PgtableBackend::Iommupt if range_ok && iova == 0 => Some((0, u64::MAX)),
            _ => None,
        };
    }
    let end = iova.wrapping_add(unmapped).wrapping_sub(1);
    (iova < end).then_some((iova, unmapped))
}

/// UNLINK-02, UNLINK-04, UNLINK-05; mirrors `iommu_dma_iova_unlink_range_slow`.
///
/// Walks `[addr, addr + size)` in pieces that end on granule boundaries (the first is
/// `min(size, granule - pad)`); a size of 0 still visits one empty piece, as Linux's do-while
/// does. Per piece: `iova_to_phys`; no translation → WARN and return at once (no barrier, the
/// rest of the pieces untouched; the caller's fast part still runs). Then `sync_for_cpu` on
/// exactly the piece's bytes if cache maintenance is needed, and the SWIOTLB release of the
/// piece if it translates into a bounce pool. After the loop, one barrier if cache maintenance
/// was needed.
pub fn unlink_range_slow(
    dev: &Device,
    p: &mut dyn Platform,
    addr: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
) {
    let granule = dev.iovad.granule();
    let mut iova_start_pad = dev.iovad.iova_offset(addr);
    let need_sync_dma = dev.needs_cache_maintenance(attrs);
    let end = addr.wrapping_add(size);
    let mut addr = addr;

    loop {
        let phys = p.iova_to_phys(addr);
        let len = end.wrapping_sub(addr).min(granule - iova_start_pad);
        if phys == 0 {
            p.warn(WarnCode::UNLINK_UNTRANSLATED);
            if !seeded::active(SeededBug::UntranslatedPieceSkipped) {
                return;
            }
        } else {
            if need_sync_dma {
                p.sync_for_cpu(phys, len, dir);
            }
            swiotlb::tbl_unmap_single(dev, p, phys, len, dir, attrs);
        }
        addr = addr.wrapping_add(len);
        iova_start_pad = 0;
        if addr >= end {
            break;
        }
    }

    if need_sync_dma {
        p.sync_barrier();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_of_full_and_short_unmaps() {
        let b = PgtableBackend::IoPgtableArm;
        assert_eq!(gathered(b, 0x1000, 0x3000, 0x3000), Some((0x1000, 0x3000)));
        assert_eq!(gathered(b, 0x1000, 0x3000, 0x1000), Some((0x1000, 0x1000)));
        assert_eq!(gathered(b, 0x1000, 0x3000, 0), None);
        assert_eq!(gathered(b, 0, 0x3000, 0), None);
        let pt = PgtableBackend::Iommupt;
        assert_eq!(gathered(pt, 0x1000, 0x3000, 0), None);
        assert_eq!(gathered(pt, 0, 0x3000, 0), Some((0, u64::MAX)));
        assert_eq!(gathered(pt, 0, 0, 0), None);
    }
}
