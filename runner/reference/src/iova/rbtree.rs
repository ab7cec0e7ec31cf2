//! The allocated-range tree of an IOVA domain: Linux's rbtree allocator (`drivers/iommu/iova.c`),
//! rebuilt on a [`BTreeMap`] keyed by `pfn_lo`. IOVA-01, IOVA-02, IOVA-05.
//!
//! What must match Linux is the observable address sequence, not the tree: every allocation is a
//! top-down, size-aligned *next-fit* walk that starts at a cached node, retries once in the window
//! above it, and fails fast below 4 GiB once a size has failed there (`max32_alloc_size`). The
//! red-black tree itself is not ported; its in-order neighbours (`rb_prev`/`rb_next`) are the
//! map's neighbours, and a node is named by its `pfn_lo` (ranges never overlap, so the key is
//! unique).
//!
//! All pfn arithmetic that is `unsigned long` in Linux is done with wrapping operations here, at
//! exactly the places where Linux's would wrap, so odd inputs give Linux's answer instead of a
//! panic.

use std::collections::BTreeMap;
use std::ops::Bound;

/// `IOVA_ANCHOR`: the pfn of the sentinel node that sits above every usable pfn.
pub const IOVA_ANCHOR: u64 = u64::MAX;

/// One node of the tree: an allocated or reserved range `[pfn_lo, pfn_hi]` (the key is
/// `pfn_lo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Node {
    pfn_hi: u64,
    /// The anchor node (`iovad->anchor`), which is never freed.
    anchor: bool,
}

/// The rbtree half of `struct iova_domain`: nodes, the two cached nodes, `max32_alloc_size`.
#[derive(Clone, Debug)]
pub struct IovaTree {
    nodes: BTreeMap<u64, Node>,
    /// `iovad->start_pfn`: the lowest allocatable pfn (inclusive).
    start_pfn: u64,
    /// `iovad->dma_32bit_pfn`: the first pfn at or above 4 GiB.
    dma_32bit_pfn: u64,
    /// `iovad->max32_alloc_size`: sizes at or above it fail at once below 4 GiB.
    max32_alloc_size: u64,
    /// `iovad->cached_node` (the key of the node the next >32-bit walk starts at).
    cached_node: u64,
    /// `iovad->cached32_node`.
    cached32_node: u64,
    /// The current key of the anchor node (only `reserve_iova` merging could lower it).
    anchor: u64,
    /// `ULLONG_MAX >> iova_shift`: `reserve_iova` refuses pfns above it.
    max_pfn: u64,
}

/// `fls_long`: the 1-based index of the most significant set bit, 0 for 0.
pub(crate) fn fls_long(x: u64) -> u32 {
    64 - x.leading_zeros()
}

impl IovaTree {
    /// Mirrors the tree part of `init_iova_domain`: only the anchor `[~0, ~0]`, both cached
    /// nodes on it, `max32_alloc_size = dma_32bit_pfn`.
    pub fn new(start_pfn: u64, dma_32bit_pfn: u64, shift: u32) -> IovaTree {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            IOVA_ANCHOR,
            Node {
                pfn_hi: IOVA_ANCHOR,
                anchor: true,
            },
        );
        IovaTree {
            nodes,
            start_pfn,
            dma_32bit_pfn,
            max32_alloc_size: dma_32bit_pfn,
            cached_node: IOVA_ANCHOR,
            cached32_node: IOVA_ANCHOR,
            anchor: IOVA_ANCHOR,
            max_pfn: u64::MAX.checked_shr(shift).unwrap_or(0),
        }
    }

    /// The current `max32_alloc_size`.
    pub fn max32_alloc_size(&self) -> u64 {
        self.max32_alloc_size
    }

    /// Every node except the anchor, as inclusive `(pfn_lo, pfn_hi)`, ascending.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.nodes
            .iter()
            .filter(|(_, n)| !n.anchor)
            .map(|(lo, n)| (*lo, n.pfn_hi))
    }

    fn pfn_hi(&self, lo: u64) -> u64 {
        self.nodes.get(&lo).map_or(lo, |n| n.pfn_hi)
    }

    /// `rb_prev`.
    fn prev(&self, lo: u64) -> Option<u64> {
        self.nodes.range(..lo).next_back().map(|(k, _)| *k)
    }

    /// `rb_next`.
    fn next(&self, lo: u64) -> Option<u64> {
        self.nodes
            .range((Bound::Excluded(lo), Bound::Unbounded))
            .next()
            .map(|(k, _)| *k)
    }

    /// Mirrors `__get_cached_rbnode`.
    fn cached_rbnode(&self, limit_pfn: u64) -> u64 {
        if limit_pfn <= self.dma_32bit_pfn {
            self.cached32_node
        } else {
            self.cached_node
        }
    }

    /// Mirrors `iova_find_limit`: where the retry walk starts. Linux's tree descent lands on
    /// either the node straddling `limit_pfn` or a node at/above it, depending on the tree's
    /// shape; every such start gives the same walk result (the walk drops below each node at or
    /// above the limit without moving the candidate), so the lowest node with
    /// `pfn_hi >= limit_pfn` is used. The anchor is returned for limits above 4 GiB, as in Linux.
    fn find_limit(&self, limit_pfn: u64) -> u64 {
        if limit_pfn > self.dma_32bit_pfn {
            return self.anchor;
        }
        if let Some((lo, n)) = self.nodes.range(..=limit_pfn).next_back() {
            if n.pfn_hi >= limit_pfn {
                return *lo;
            }
        }
        self.nodes
            .range((Bound::Excluded(limit_pfn), Bound::Unbounded))
            .next()
            .map_or(self.anchor, |(k, _)| *k)
    }

    /// IOVA-01, IOVA-02; mirrors `alloc_iova(iovad, size, limit_pfn, size_aligned = true)`
    /// (`limit_pfn` inclusive). Returns the new node's `pfn_lo`.
    pub fn alloc(&mut self, size: u64, limit_pfn: u64) -> Option<u64> {
        self.alloc_and_insert_range(size, limit_pfn.wrapping_add(1))
    }

    /// IOVA-02; mirrors `__alloc_and_insert_iova_range` with `size_aligned` (`limit_pfn`
    /// exclusive).
    fn alloc_and_insert_range(&mut self, size: u64, limit_pfn: u64) -> Option<u64> {
        // The start pfn is aligned to roundup_pow_of_two(size).
        let align_mask = u64::MAX
            .checked_shl(fls_long(size.wrapping_sub(1)))
            .unwrap_or(0);
        let mut high_pfn = limit_pfn;
        let mut low_pfn = self.start_pfn;

        if limit_pfn <= self.dma_32bit_pfn && size >= self.max32_alloc_size {
            return None;
        }

        let mut curr = self.cached_rbnode(limit_pfn);
        let retry_pfn = self.pfn_hi(curr);
        let mut retried = false;
        let new_pfn = loop {
            let mut new_pfn;
            loop {
                high_pfn = high_pfn.min(curr);
                new_pfn = high_pfn.wrapping_sub(size) & align_mask;
                match self.prev(curr) {
                    Some(p) if new_pfn <= self.pfn_hi(p) && new_pfn >= low_pfn => curr = p,
                    _ => break,
                }
            }
            if high_pfn < size || new_pfn < low_pfn {
                // Linux retries whenever the failed pass started at start_pfn; a cached node
                // ending just below start_pfn would make that loop forever, so the retry
                // window is entered at most once here.
                if !retried && low_pfn == self.start_pfn && retry_pfn < limit_pfn {
                    retried = true;
                    high_pfn = limit_pfn;
                    low_pfn = retry_pfn.wrapping_add(1);
                    curr = self.find_limit(limit_pfn);
                    continue;
                }
                self.max32_alloc_size = size;
                return None;
            }
            break new_pfn;
        };

        let pfn_hi = new_pfn.wrapping_add(size).wrapping_sub(1);
        if self.nodes.contains_key(&new_pfn) {
            // iova_insert_rbtree's "should not happen" WARN; cannot be reached.
            return None;
        }
        self.nodes.insert(
            new_pfn,
            Node {
                pfn_hi,
                anchor: false,
            },
        );
        // __cached_rbnode_insert_update
        if pfn_hi < self.dma_32bit_pfn {
            self.cached32_node = new_pfn;
        } else {
            self.cached_node = new_pfn;
        }
        Some(new_pfn)
    }

    /// Mirrors `private_find_iova`: the node containing `pfn`, by its `pfn_lo`.
    pub fn find(&self, pfn: u64) -> Option<u64> {
        let (lo, n) = self.nodes.range(..=pfn).next_back()?;
        (pfn <= n.pfn_hi).then_some(*lo)
    }

    /// Mirrors `remove_iova` (with `__cached_rbnode_delete_update`) for the node keyed `lo`.
    /// The anchor is never removed (Linux would corrupt its tree; only a 1-byte granule can
    /// even name it).
    pub fn remove(&mut self, lo: u64) {
        let Some(node) = self.nodes.get(&lo).copied() else {
            return;
        };
        if node.anchor {
            return;
        }
        let next = self.next(lo).unwrap_or(self.anchor);

        let cached32 = self.cached32_node;
        if lo == cached32 || (node.pfn_hi < self.dma_32bit_pfn && lo >= cached32) {
            self.cached32_node = next;
        }
        if lo < self.dma_32bit_pfn {
            self.max32_alloc_size = self.dma_32bit_pfn;
        }
        if lo >= self.cached_node {
            self.cached_node = next;
        }
        self.nodes.remove(&lo);
    }

    /// Mirrors `free_iova`: remove the node containing `pfn`, if any (silently nothing else).
    pub fn free(&mut self, pfn: u64) {
        if let Some(lo) = self.find(pfn) {
            self.remove(lo);
        }
    }

    /// Changes a node's `pfn_lo` in place (what `__adjust_overlap_range` does to a live node).
    fn rekey(&mut self, old: u64, new: u64) {
        if let Some(n) = self.nodes.remove(&old) {
            self.nodes.insert(new, n);
            for k in [
                &mut self.cached_node,
                &mut self.cached32_node,
                &mut self.anchor,
            ] {
                if *k == old {
                    *k = new;
                }
            }
        }
    }

    /// IOVA-05; mirrors `reserve_iova`: mark `[pfn_lo, pfn_hi]` as never allocatable, extending
    /// overlapped nodes downwards and inserting what is left above them.
    pub fn reserve(&mut self, pfn_lo: u64, pfn_hi: u64) {
        if (pfn_hi | pfn_lo) > self.max_pfn {
            // Linux WARNs ("nonsensical pfns"); unreachable for pfns computed from addresses.
            return;
        }
        let mut lo = pfn_lo;
        let hi = pfn_hi;
        let mut overlap = false;
        let mut cursor = self.nodes.keys().next().copied();
        while let Some(key) = cursor {
            let node_hi = self.pfn_hi(key);
            let mut key_now = key;
            if lo <= node_hi && hi >= key {
                if lo < key {
                    self.rekey(key, lo);
                    key_now = lo;
                }
                if hi > node_hi {
                    lo = node_hi.wrapping_add(1);
                }
                if lo >= key_now && hi <= node_hi {
                    return;
                }
                overlap = true;
            } else if overlap {
                break;
            }
            cursor = self.next(key_now);
        }
        // An equal pfn_lo cannot exist here (iova_insert_rbtree would WARN and skip it).
        self.nodes.entry(lo).or_insert(Node {
            pfn_hi: hi,
            anchor: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D32: u64 = 0x10_0000;

    fn fresh() -> IovaTree {
        IovaTree::new(1, D32, 12)
    }

    #[test]
    fn fls_long_matches_linux() {
        assert_eq!(fls_long(0), 0);
        assert_eq!(fls_long(1), 1);
        assert_eq!(fls_long(3), 2);
        assert_eq!(fls_long(u64::MAX), 64);
    }

    /// The tree itself does not round the size (alloc_iova_fast does), it only aligns the
    /// start to roundup_pow_of_two(size): 3 granules under 0xFFFFF -> (0xFFFFF - 3) & ~3 =
    /// 0xFFFFC, node [0xFFFFC, 0xFFFFE].
    #[test]
    fn size_alignment_is_roundup_pow2() {
        let mut t = fresh();
        assert_eq!(t.alloc(1, 0xF_FFFF), Some(0xF_FFFF));
        assert_eq!(t.alloc(3, 0xF_FFFF), Some(0xF_FFFC));
        assert!(t.ranges().any(|r| r == (0xF_FFFC, 0xF_FFFE)));
        // 5 granules align to 8: (0xFFFFC - 5) & ~7 = 0xFFFF0.
        assert_eq!(t.alloc(5, 0xF_FFFF), Some(0xF_FFF0));
    }

    /// IOVA-02: once a size failed below 4 GiB, any request of that size or larger fails at
    /// once there, even where a walk would succeed; freeing anything below 4 GiB resets it.
    #[test]
    fn max32_fast_fail_and_reset() {
        let mut t = fresh();
        // Fill [0x7FFF0, 0x7FFFF] and reserve everything else below 0x80000.
        t.reserve(0, 0x7_FFEF);
        let a = t.alloc(16, 0x7_FFFF).unwrap();
        assert_eq!(a, 0x7_FFF0);
        // Nothing left under limit 0x7FFFF: the walk fails and records size 2.
        assert_eq!(t.alloc(2, 0x7_FFFF), None);
        assert_eq!(t.max32_alloc_size(), 2);
        // Plenty of room under 4 GiB, but size 2 >= max32_alloc_size fails fast...
        assert_eq!(t.alloc(2, 0xF_FFFF), None);
        assert_eq!(t.alloc(4, 0xF_FFFF), None);
        // ...while a smaller size still walks: the first pass (from cached32 = 0x7FFF0) fails,
        // the retry window above it succeeds at the top of the 32-bit space.
        assert_eq!(t.alloc(1, 0xF_FFFF), Some(0xF_FFFF));
        // Freeing a node below 4 GiB resets max32_alloc_size to dma_32bit_pfn.
        t.free(0xF_FFFF);
        assert_eq!(t.max32_alloc_size(), D32);
        assert_eq!(t.alloc(2, 0xF_FFFF), Some(0xF_FFFE));
    }

    /// A failed walk with a limit above 4 GiB still records max32_alloc_size (Linux sets it
    /// unconditionally).
    #[test]
    fn max32_is_set_by_a_64bit_failure_too() {
        let mut t = IovaTree::new(1, D32, 12);
        t.reserve(1, 0xF_FFFF_FFFF);
        assert_eq!(t.alloc(8, 0xF_FFFF_FFFF), None);
        assert_eq!(t.max32_alloc_size(), 8);
    }

    /// IOVA-02: next-fit does not revisit the alignment gap above the cached node; only the
    /// retry window (above the cached node) reaches it, once the space below is exhausted.
    #[test]
    fn retry_window_above_cached_node() {
        let mut t = fresh();
        assert_eq!(t.alloc(1, 0xF_FFFF), Some(0xF_FFFF));
        // (0xFFFFF - 2) & ~1 = 0xFFFFC: leaves the alignment gap 0xFFFFE.
        assert_eq!(t.alloc(2, 0xF_FFFF), Some(0xF_FFFC));
        // Next-fit continues below the cached node: the gap is skipped.
        assert_eq!(t.alloc(1, 0xF_FFFF), Some(0xF_FFFB));
        // Exhaust everything below: the first pass fails, the retry window
        // [hi(cached32) + 1, limit) = [0xFFFFC, 0x100000) is walked from the anchor and finds the gap.
        t.reserve(0, 0xF_FFFA);
        assert_eq!(t.alloc(1, 0xF_FFFF), Some(0xF_FFFE));
        // Now the window above the new cached node (0xFFFFE) holds only 0xFFFFF, which is
        // taken: the allocation fails and records max32_alloc_size = 1.
        assert_eq!(t.alloc(1, 0xF_FFFF), None);
        assert_eq!(t.max32_alloc_size(), 1);
    }

    #[test]
    fn reserve_merges_overlaps() {
        let mut t = fresh();
        t.reserve(0x100, 0x1FF);
        t.reserve(0x300, 0x3FF);
        // Overlaps both and the gap: the first node is extended down, the second down to meet
        // the first, and the rest above the second inserted.
        t.reserve(0x80, 0x47F);
        let r: Vec<_> = t.ranges().collect();
        assert_eq!(r, vec![(0x80, 0x1FF), (0x200, 0x3FF), (0x400, 0x47F)]);
        // Fully inside an existing node: nothing changes.
        t.reserve(0x90, 0xA0);
        assert_eq!(t.ranges().count(), 3);
    }

    #[test]
    fn free_of_unknown_pfn_is_silent() {
        let mut t = fresh();
        t.free(0x1234);
        t.free(IOVA_ANCHOR);
        assert_eq!(t.ranges().count(), 0);
        assert_eq!(t.alloc(1, 0xF_FFFF), Some(0xF_FFFF));
    }
}
