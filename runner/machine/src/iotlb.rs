//! The IOTLB model: the two windows in which the device's view of the page table differs from
//! the page table itself.
//!
//! * **Pending** PTEs: on machines whose driver has `iotlb_sync_map` and whose device does not
//!   see new entries until it runs (VT-d in caching mode caches "not present"), a new PTE is
//!   pending until an invalidation covers it. Elsewhere new PTEs are visible at once.
//! * **Stale** translations: a cleared PTE stays usable by the device until an invalidation
//!   covers it (`iotlb_sync` of the gather, `flush_iotlb_all`, or a flush the page table issues
//!   itself). The model is pessimistic: every cleared PTE is assumed cached.
//!
//! "Covers" means overlaps: invalidating any byte of a cached entry drops the whole entry, as
//! hardware invalidation by address range does.

use std::collections::BTreeMap;

use crate::iommu::Pte;

/// A translation cleared from the page table but possibly still cached by the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaleEntry {
    pub phys: u64,
    pub prot: u32,
    /// Removal order; among overlapping stale entries the newest wins.
    seq: u64,
}

/// The IOTLB state of one domain.
#[derive(Clone, Debug, Default)]
pub struct Iotlb {
    /// Live PTEs the device may not use yet: IOVA -> size (never overlapping).
    pending: BTreeMap<u64, u64>,
    /// Stale entries grouped by size, then by IOVA (aligned to their size, so one size class
    /// never overlaps itself).
    stale: BTreeMap<u64, BTreeMap<u64, StaleEntry>>,
    seq: u64,
}

fn end_of(start: u64, len: u64) -> u128 {
    u128::from(start) + u128::from(len)
}

impl Iotlb {
    pub fn new() -> Iotlb {
        Iotlb::default()
    }

    /// A PTE was installed; on `needs_sync_map` machines it is pending until covered.
    pub fn installed(&mut self, iova: u64, size: u64, needs_sync_map: bool) {
        if needs_sync_map {
            self.pending.insert(iova, size);
        }
    }

    /// A PTE was cleared: it is no longer pending, and becomes stale.
    pub fn removed(&mut self, iova: u64, pte: &Pte) {
        self.pending.remove(&iova);
        self.seq += 1;
        self.stale.entry(pte.size).or_default().insert(
            iova,
            StaleEntry {
                phys: pte.phys,
                prot: pte.prot,
                seq: self.seq,
            },
        );
    }

    /// An invalidation of `[iova, iova+len)`: pending PTEs it overlaps become visible, stale
    /// entries it overlaps are dropped.
    pub fn invalidate(&mut self, iova: u64, len: u64) {
        if len == 0 {
            return;
        }
        let end = end_of(iova, len);
        // Pending entries do not overlap, so scanning down from the end may stop at the first
        // one that ends before the range.
        let upto = u64::try_from(end).map_or(u64::MAX, |e| e - 1);
        let hit: Vec<u64> = self
            .pending
            .range(..=upto)
            .rev()
            .take_while(|(&p, &s)| end_of(p, s) > u128::from(iova))
            .map(|(&p, _)| p)
            .collect();
        for p in hit {
            self.pending.remove(&p);
        }
        for (&size, class) in self.stale.iter_mut() {
            let lo = iova.saturating_sub(size - 1);
            let hit: Vec<u64> = class
                .range(lo..=upto)
                .filter(|(&s, _)| end_of(s, size) > u128::from(iova))
                .map(|(&s, _)| s)
                .collect();
            for s in hit {
                class.remove(&s);
            }
        }
        self.stale.retain(|_, class| !class.is_empty());
    }

    /// `flush_iotlb_all`: everything pending becomes visible, nothing stale remains.
    pub fn invalidate_all(&mut self) {
        self.pending.clear();
        self.stale.clear();
    }

    /// Is the live PTE at `pte_iova` still invisible to the device?
    pub fn is_pending(&self, pte_iova: u64) -> bool {
        self.pending.contains_key(&pte_iova)
    }

    /// The newest stale entry covering `addr`: (its IOVA, its size, the entry).
    pub fn stale_at(&self, addr: u64) -> Option<(u64, u64, StaleEntry)> {
        self.stale
            .iter()
            .filter_map(|(&size, class)| {
                let base = addr & !(size - 1);
                class.get(&base).map(|e| (base, size, *e))
            })
            .max_by_key(|(_, _, e)| e.seq)
    }

    /// The IOVA ranges the device may still use after unmap, merged, in IOVA order.
    pub fn stale_ranges(&self) -> Vec<(u64, u64)> {
        let mut spans: Vec<(u64, u128)> = self
            .stale
            .iter()
            .flat_map(|(&size, class)| class.keys().map(move |&s| (s, end_of(s, size))))
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(u64, u128)> = Vec::new();
        for (s, e) in spans {
            match merged.last_mut() {
                Some((_, me)) if u128::from(s) <= *me => *me = (*me).max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
            .into_iter()
            .map(|(s, e)| (s, u64::try_from(e - u128::from(s)).unwrap_or(u64::MAX)))
            .collect()
    }

    /// Pending PTEs, (IOVA, size), in IOVA order.
    pub fn pending(&self) -> Vec<(u64, u64)> {
        self.pending.iter().map(|(&i, &s)| (i, s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pte(phys: u64, size: u64) -> Pte {
        Pte {
            phys,
            size,
            prot: 3,
        }
    }

    #[test]
    fn stale_entries_merge_and_close_on_overlap() {
        let mut t = Iotlb::new();
        t.removed(0x1000, &pte(0xA000, 0x1000));
        t.removed(0x2000, &pte(0xB000, 0x1000));
        t.removed(0x20_0000, &pte(0x40_0000, 0x20_0000));
        assert_eq!(
            t.stale_ranges(),
            vec![(0x1000, 0x2000), (0x20_0000, 0x20_0000)]
        );
        assert_eq!(
            t.stale_at(0x2010).map(|(i, _, e)| (i, e.phys)),
            Some((0x2000, 0xB000))
        );
        // One byte of the 2 MiB entry drops all of it; 0x1000..0x2000 is untouched.
        t.invalidate(0x3f_ffff, 1);
        t.invalidate(0x2000, 0x1000);
        assert_eq!(t.stale_ranges(), vec![(0x1000, 0x1000)]);
        t.invalidate_all();
        assert!(t.stale_ranges().is_empty());
    }

    #[test]
    fn newest_stale_entry_wins() {
        let mut t = Iotlb::new();
        t.removed(0x20_0000, &pte(0x40_0000, 0x20_0000));
        t.removed(0x20_1000, &pte(0x9000, 0x1000));
        assert_eq!(t.stale_at(0x20_1000).map(|(_, _, e)| e.phys), Some(0x9000));
        assert_eq!(
            t.stale_at(0x20_2000).map(|(_, _, e)| e.phys),
            Some(0x40_0000)
        );
    }

    #[test]
    fn pending_until_covered() {
        let mut t = Iotlb::new();
        t.installed(0x1000, 0x1000, true);
        t.installed(0x2000, 0x1000, true);
        t.installed(0x9000, 0x1000, false);
        assert_eq!(t.pending(), vec![(0x1000, 0x1000), (0x2000, 0x1000)]);
        t.invalidate(0x2fff, 0x10);
        assert!(t.is_pending(0x1000) && !t.is_pending(0x2000));
        t.invalidate(u64::MAX, u64::MAX);
        t.invalidate(0, u64::MAX);
        assert!(t.pending().is_empty());
    }
}
