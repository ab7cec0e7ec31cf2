//! The IOVA range caches (`drivers/iommu/iova.c`, "Magazine caches for IOVA ranges"). IOVA-04.
//!
//! Six buckets (sizes of 1, 2, 4, 8, 16, 32 granules). Each bucket has, per CPU, a `loaded` and a
//! `prev` magazine of up to 127 pfns, plus one global depot of full magazines (LIFO). A cached
//! range stays allocated in the tree; it is only handed out again by a later request of the same
//! bucket, normally on the same CPU.
//!
//! Left out: the depot trimming work (`iova_depot_work_func`, every 100 ms frees one depot
//! magazine back to the tree while the depot holds more magazines than there are online CPUs).
//! There is no clock in the platform interface yet, so the depot is only emptied by the
//! flush-and-retry path of an allocation failure.

use std::collections::BTreeMap;

use super::rbtree::IovaTree;
use crate::seeded::{self, SeededBug};

/// `IOVA_RANGE_CACHE_MAX_SIZE`: buckets for orders 0..=5.
pub const IOVA_RANGE_CACHE_MAX_SIZE: u32 = 6;
/// `IOVA_MAG_SIZE`: pfns per magazine.
pub const IOVA_MAG_SIZE: usize = 127;

/// `order_base_2`: the smallest `k` with `2^k >= n` (0 for 0 and 1).
pub(crate) fn order_base_2(n: u64) -> u32 {
    if n > 1 {
        super::rbtree::fls_long(n - 1)
    } else {
        0
    }
}

/// `struct iova_magazine`: a stack of pfns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Magazine {
    pfns: Vec<u64>,
}

impl Magazine {
    fn full(&self) -> bool {
        self.pfns.len() == IOVA_MAG_SIZE
    }

    fn empty(&self) -> bool {
        self.pfns.is_empty()
    }

    /// The cached pfns, oldest first.
    pub fn pfns(&self) -> &[u64] {
        &self.pfns
    }

    /// Mirrors `iova_magazine_push`.
    fn push(&mut self, pfn: u64) {
        self.pfns.push(pfn);
    }

    /// Mirrors `iova_magazine_pop`: scan from the newest entry down for the first pfn
    /// `<= limit_pfn`; remove it by moving the newest entry into its slot. 0 if none.
    fn pop(&mut self, limit_pfn: u64) -> u64 {
        let found = if seeded::active(SeededBug::RcacheFifo) {
            self.pfns.iter().position(|&pfn| pfn <= limit_pfn)
        } else {
            self.pfns.iter().rposition(|&pfn| pfn <= limit_pfn)
        };
        let Some(i) = found else {
            return 0;
        };
        self.pfns.swap_remove(i)
    }

    /// Mirrors `iova_magazine_free_pfns`: return every pfn to the tree, oldest first.
    /// A pfn with no node behind it is skipped (Linux WARNs; there is no code for it in
    /// `WarnCode`, and it needs a free of a never-allocated state first).
    fn free_pfns(&mut self, tree: &mut IovaTree) {
        for pfn in self.pfns.drain(..) {
            if let Some(lo) = tree.find(pfn) {
                tree.remove(lo);
            }
        }
    }
}

/// `struct iova_cpu_rcache`. `None` is a magazine pointer that was never allocated.
#[derive(Clone, Debug, Default)]
struct CpuRcache {
    loaded: Option<Magazine>,
    prev: Option<Magazine>,
}

/// `struct iova_rcache`: one bucket.
#[derive(Clone, Debug, Default)]
pub struct Rcache {
    cpus: BTreeMap<u32, CpuRcache>,
    /// Full magazines; the last element is the head of Linux's list.
    depot: Vec<Magazine>,
}

impl Rcache {
    /// Mirrors `__iova_rcache_insert`. Magazine allocation cannot fail here, so this always
    /// succeeds.
    fn insert(&mut self, cpu: u32, pfn: u64) -> bool {
        let c = self.cpus.entry(cpu).or_default();
        let loaded_has_room = c.loaded.as_ref().is_some_and(|m| !m.full());
        let prev_has_room = c.prev.as_ref().is_some_and(|m| !m.full());
        if loaded_has_room {
            // Push into loaded.
        } else if prev_has_room {
            std::mem::swap(&mut c.prev, &mut c.loaded);
        } else {
            let new_mag = Magazine::default();
            match (c.loaded.take(), c.prev.is_none()) {
                (Some(old), true) => c.prev = Some(old),
                (Some(old), false) => self.depot.push(old),
                (None, _) => {}
            }
            c.loaded = Some(new_mag);
        }
        if let Some(m) = c.loaded.as_mut() {
            m.push(pfn);
        }
        true
    }

    /// Mirrors `__iova_rcache_get`: loaded if non-empty, else swap in prev if non-empty, else a
    /// full magazine from the depot; then pop a pfn `<= limit_pfn`. 0 on a miss.
    fn get(&mut self, cpu: u32, limit_pfn: u64) -> u64 {
        let c = self.cpus.entry(cpu).or_default();
        let has_pfn = if c.loaded.as_ref().is_some_and(|m| !m.empty()) {
            true
        } else if c.prev.as_ref().is_some_and(|m| !m.empty()) {
            std::mem::swap(&mut c.prev, &mut c.loaded);
            true
        } else if let Some(full) = self.depot.pop() {
            c.loaded = Some(full);
            true
        } else {
            false
        };
        if !has_pfn {
            return 0;
        }
        c.loaded.as_mut().map_or(0, |m| m.pop(limit_pfn))
    }
}

/// `iovad->rcaches`: the six buckets of a domain.
#[derive(Clone, Debug, Default)]
pub struct Rcaches {
    buckets: [Rcache; IOVA_RANGE_CACHE_MAX_SIZE as usize],
}

impl Rcaches {
    /// IOVA-04; mirrors `iova_rcache_insert`: cache `pfn` (a range of `size` granules, unrounded)
    /// in bucket `order_base_2(size)`. False for sizes above 32 granules.
    pub fn insert(&mut self, cpu: u32, pfn: u64, size: u64) -> bool {
        let log_size = order_base_2(size);
        if log_size >= IOVA_RANGE_CACHE_MAX_SIZE {
            return false;
        }
        self.buckets[log_size as usize].insert(cpu, pfn)
    }

    /// IOVA-04; mirrors `iova_rcache_get(iovad, size, limit_pfn)` (`limit_pfn` exclusive, as
    /// `alloc_iova_fast` passes it): a cached pfn with `pfn <= limit_pfn - size`, or 0.
    pub fn get(&mut self, cpu: u32, size: u64, limit_pfn: u64) -> u64 {
        let log_size = order_base_2(size);
        if log_size >= IOVA_RANGE_CACHE_MAX_SIZE {
            return 0;
        }
        self.buckets[log_size as usize].get(cpu, limit_pfn.wrapping_sub(size))
    }

    /// The CPUs that ever touched a cache, ascending (`for_each_online_cpu` over the CPUs that
    /// can hold anything).
    pub fn cpus(&self) -> Vec<u32> {
        let mut cpus: Vec<u32> = self
            .buckets
            .iter()
            .flat_map(|b| b.cpus.keys().copied())
            .collect();
        cpus.sort_unstable();
        cpus.dedup();
        cpus
    }

    /// Mirrors `free_cpu_cached_iovas`: bucket by bucket, the CPU's loaded then prev magazine
    /// back to the tree (the magazines themselves stay, empty).
    pub fn free_cpu_cached(&mut self, cpu: u32, tree: &mut IovaTree) {
        for bucket in &mut self.buckets {
            if let Some(c) = bucket.cpus.get_mut(&cpu) {
                if let Some(m) = c.loaded.as_mut() {
                    m.free_pfns(tree);
                }
                if let Some(m) = c.prev.as_mut() {
                    m.free_pfns(tree);
                }
            }
        }
    }

    /// Mirrors `free_global_cached_iovas`: bucket by bucket, every depot magazine (newest first)
    /// back to the tree.
    pub fn free_global_cached(&mut self, tree: &mut IovaTree) {
        for bucket in &mut self.buckets {
            while let Some(mut m) = bucket.depot.pop() {
                m.free_pfns(tree);
            }
        }
    }

    /// The pfns cached for `cpu` in bucket `order`: (loaded, prev), oldest first.
    pub fn cpu_magazines(&self, cpu: u32, order: u32) -> (Vec<u64>, Vec<u64>) {
        let Some(c) = self
            .buckets
            .get(order as usize)
            .and_then(|b| b.cpus.get(&cpu))
        else {
            return (Vec::new(), Vec::new());
        };
        let pfns = |m: &Option<Magazine>| m.as_ref().map_or(Vec::new(), |m| m.pfns.clone());
        (pfns(&c.loaded), pfns(&c.prev))
    }

    /// Number of full magazines in the depot of bucket `order`.
    pub fn depot_len(&self, order: u32) -> usize {
        self.buckets
            .get(order as usize)
            .map_or(0, |b| b.depot.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_base_2_matches_linux() {
        assert_eq!(order_base_2(0), 0);
        assert_eq!(order_base_2(1), 0);
        assert_eq!(order_base_2(2), 1);
        assert_eq!(order_base_2(3), 2);
        assert_eq!(order_base_2(4), 2);
        assert_eq!(order_base_2(32), 5);
        assert_eq!(order_base_2(33), 6);
    }

    /// The pop scans from the newest entry for one under the limit and fills the hole with the
    /// newest entry.
    #[test]
    fn magazine_pop_scans_newest_first_and_moves_last_into_hole() {
        let mut m = Magazine::default();
        for pfn in [10, 50, 20, 60] {
            m.push(pfn);
        }
        // Newest first: 60 > 30, 20 <= 30 -> pop 20; 60 moves into its slot.
        assert_eq!(m.pop(30), 20);
        assert_eq!(m.pfns(), &[10, 50, 60]);
        assert_eq!(m.pop(5), 0);
        assert_eq!(m.pfns(), &[10, 50, 60]);
        assert_eq!(m.pop(u64::MAX), 60);
        assert_eq!(m.pfns(), &[10, 50]);
    }

    /// loaded fills up (127), becomes prev; the next full loaded goes to the depot; gets drain
    /// loaded, then swap in prev, then take the depot's newest magazine.
    #[test]
    fn loaded_prev_depot_rotation() {
        let mut r = Rcaches::default();
        for pfn in 1..=(3 * IOVA_MAG_SIZE as u64 + 1) {
            assert!(r.insert(0, pfn, 1));
        }
        // [1..=127] filled loaded and moved to prev (prev was never allocated); [128..=254]
        // and [255..=381] each filled loaded while prev was full, so went to the depot.
        let (loaded, prev) = r.cpu_magazines(0, 0);
        assert_eq!(prev, (1..=127).collect::<Vec<u64>>());
        assert_eq!(r.depot_len(0), 2);
        assert_eq!(loaded, vec![382]);
        // LIFO within loaded.
        assert_eq!(r.get(0, 1, u64::MAX), 382);
        // loaded empty -> swap in prev (full of 1..=127): newest = 127.
        assert_eq!(r.get(0, 1, u64::MAX), 127);
        // Other CPUs see nothing in loaded/prev but share the depot.
        assert_eq!(r.get(1, 1, u64::MAX), 381);
    }
}
