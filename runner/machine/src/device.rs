//! The device's side of DMA: turning a DMA address range into physical segments, the way the
//! device would see it, before any byte moves.
//!
//! A plan is made for the whole access first; if any granule faults, nothing is transferred
//! (the machine reports the first fault and the hazards found before it).

use dmaconf_platform::Prot;

use crate::events::{Fault, FaultReason, Hazard};
use crate::iommu::IoPageTable;
use crate::iotlb::Iotlb;

/// How a device access resolves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPlan {
    /// Physical `(addr, len)` pieces, in access order, merged when contiguous.
    pub segments: Vec<(u64, u64)>,
    pub hazards: Vec<Hazard>,
    /// Set when the access must not transfer anything.
    pub fault: Option<Fault>,
    /// The access lay beyond the addressing limit (`Hazard::OutsideMask` recorded).
    pub refused: bool,
}

impl AccessPlan {
    fn push_segment(&mut self, phys: u64, len: u64) {
        if let Some((p, l)) = self.segments.last_mut() {
            if p.checked_add(*l) == Some(phys) {
                *l += len;
                return;
            }
        }
        self.segments.push((phys, len));
    }
}

/// Linux `min_not_zero(dma_mask, bus_dma_limit)`: the highest address the device can emit.
pub fn addressing_limit(dma_mask: u64, bus_dma_limit: u64) -> u64 {
    match (dma_mask, bus_dma_limit) {
        (0, b) => b,
        (m, 0) => m,
        (m, b) => m.min(b),
    }
}

/// Checks `[dma, dma+len)` against the device's addressing limit. The device cannot emit an
/// address above it, so such an access is refused with `OutsideMask` at the first byte beyond.
pub fn check_limit(limit: u64, dma: u64, len: u64) -> Option<Hazard> {
    if len == 0 {
        return None;
    }
    let last = u128::from(dma) + u128::from(len) - 1;
    (last > u128::from(limit)).then(|| Hazard::OutsideMask {
        addr: dma.max(limit.saturating_add(1)),
    })
}

/// An untranslated access (no IOMMU, or an identity domain): DMA address = physical address.
pub fn plan_direct(limit: u64, dma: u64, len: u64) -> AccessPlan {
    let mut plan = AccessPlan::default();
    if let Some(h) = check_limit(limit, dma, len) {
        plan.hazards.push(h);
        plan.refused = true;
    } else if len > 0 {
        plan.segments.push((dma, len));
    }
    plan
}

/// Tracks hazard runs so that a long access through many affected granules reports one hazard
/// per contiguous run of granules rather than one per granule.
#[derive(Default)]
struct Runs {
    last_unsynced: Option<u64>,
    last_stale: Option<u64>,
}

/// A translated access: per granule, a live PTE (with `UnsyncedTranslation` while it is
/// pending, and `StaleTranslation` when an older, different translation of that granule is
/// still cached), else a stale translation (`StaleTranslation`), else an `Unmapped` fault.
/// A read needs `IOMMU_READ` (or only `IOMMU_WRITE` where the format cannot express
/// write-only, [`IoPageTable::readable`]), a write `IOMMU_WRITE`, else a `Permission` fault. Faults and
/// hazards carry the first byte address of the granule the access touched.
pub fn plan_translated(
    pt: &IoPageTable,
    tlb: &Iotlb,
    dma: u64,
    len: u64,
    write: bool,
) -> AccessPlan {
    let mut plan = AccessPlan::default();
    let granule = match pt.granule() {
        0 => 4096,
        g => g,
    };
    let need = if write { Prot::WRITE.0 } else { Prot::READ.0 };
    let end = u128::from(dma) + u128::from(len);
    let mut runs = Runs::default();
    let mut at = u128::from(dma);
    let mut index = 0u64;
    while at < end {
        let addr = at as u64;
        let granule_end = (u128::from(addr & !(granule - 1)) + u128::from(granule)).min(end);
        let n = (granule_end - at) as u64;
        let stale = tlb.stale_at(addr);
        let (phys, prot) = if let Some((base, pte)) = pt.lookup(addr) {
            let phys = pte.phys.wrapping_add(addr - base);
            if tlb.is_pending(base) {
                if runs.last_unsynced.is_none_or(|l| l + 1 != index) {
                    plan.hazards
                        .push(Hazard::UnsyncedTranslation { iova: addr });
                }
                runs.last_unsynced = Some(index);
            }
            let shadowed = stale.is_some_and(|(sbase, _, e)| {
                e.phys.wrapping_add(addr - sbase) != phys || e.prot != pte.prot
            });
            if shadowed {
                if runs.last_stale.is_none_or(|l| l + 1 != index) {
                    plan.hazards.push(Hazard::StaleTranslation { iova: addr });
                }
                runs.last_stale = Some(index);
            }
            (phys, pte.prot)
        } else if let Some((sbase, _, e)) = stale {
            if runs.last_stale.is_none_or(|l| l + 1 != index) {
                plan.hazards.push(Hazard::StaleTranslation { iova: addr });
            }
            runs.last_stale = Some(index);
            (e.phys.wrapping_add(addr - sbase), e.prot)
        } else {
            plan.fault = Some(Fault {
                iova: addr,
                reason: FaultReason::Unmapped,
            });
            break;
        };
        let allowed = if write {
            prot & need != 0
        } else {
            pt.readable(prot)
        };
        if !allowed {
            plan.fault = Some(Fault {
                iova: addr,
                reason: FaultReason::Permission,
            });
            break;
        }
        plan.push_segment(phys, n);
        at = granule_end;
        index += 1;
    }
    if plan.fault.is_some() {
        plan.segments.clear();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_min_not_zero() {
        assert_eq!(addressing_limit(0xffff_ffff, 0), 0xffff_ffff);
        assert_eq!(addressing_limit(0, 0xfff_ffff), 0xfff_ffff);
        assert_eq!(addressing_limit(0xffff_ffff, 0xfff_ffff), 0xfff_ffff);
        assert_eq!(addressing_limit(u64::MAX, 0), u64::MAX);
    }

    #[test]
    fn direct_access_outside_the_mask() {
        // The last byte 0x1_0000_0fff is above a 32-bit mask; the first byte beyond is 2^32.
        let p = plan_direct(0xffff_ffff, 0xffff_f000, 0x2000);
        assert!(p.refused && p.segments.is_empty());
        assert_eq!(
            p.hazards,
            vec![Hazard::OutsideMask {
                addr: 0x1_0000_0000
            }]
        );
        // Wholly above: the first byte of the access.
        let p = plan_direct(0xffff_ffff, 0x2_0000_0000, 1);
        assert_eq!(
            p.hazards,
            vec![Hazard::OutsideMask {
                addr: 0x2_0000_0000
            }]
        );
        // Inside: one segment; the top byte of a 64-bit mask is reachable.
        assert_eq!(
            plan_direct(0xffff_ffff, 0xffff_f000, 0x1000).segments,
            vec![(0xffff_f000, 0x1000)]
        );
        assert_eq!(
            plan_direct(u64::MAX, u64::MAX, 1).segments,
            vec![(u64::MAX, 1)]
        );
        assert!(plan_direct(u64::MAX, u64::MAX, 2).refused);
    }
}
