//! The reference's allocator against a deliberately naive model (IOVA-01..05).
//!
//! [`Model`] is written only from KERNEL-FACTS.md §2.2-§2.5, not from `src/iova/`: the tree is a
//! sorted `Vec` of inclusive ranges; a search does not walk neighbour by neighbour but takes the
//! highest size-aligned candidate under the current ceiling, and while any range overlaps it,
//! lowers the ceiling to the lowest such range's start (§2.4's "move below each node the
//! candidate would overlap", as a scan of the whole list). The cached nodes, the retry window
//! above the cached node, `max32_alloc_size` and its reset on free are kept as §2.4 states them.
//!
//! The rcache is in the model, as a plain LIFO stack per (CPU, bucket) whose pop takes the
//! newest pfn that fits under the limit and fills its slot with the last entry (§2.5). Real
//! magazines hold 127 pfns with a second one and a depot behind; the sequences here have at most
//! 120 operations, so no stack outgrows one magazine and the two agree. On a failed search with
//! flushing, the stacks are emptied back into the tree CPU by CPU (ascending), bucket by bucket
//! (ascending), oldest entry first, then the search runs once more (§2.3; the order of the frees
//! is the one `free_cpu_cached_iovas` uses).
//!
//! Every random sequence is driven through the reference's `DmaApi` on the test platform and
//! checked, allocation by allocation, against the model (same outcome, same address) and against
//! the semantic invariants (TRYALLOC-06, TRYALLOC-07).

use std::collections::BTreeMap;

use proptest::prelude::*;

use dmaconf_platform::{DmaApi, IovaState, Region, RegionKind};

use super::fake::{x86_facts, Fake};
use crate::Reference;

const ANCHOR: u64 = u64::MAX;

/// `roundup_pow_of_two` for sizes >= 1.
fn pow2_ceil(n: u64) -> u64 {
    n.next_power_of_two()
}

/// `order_base_2`: log2 rounded up (0 for 0 and 1).
fn order(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}

/// The naive model of one IOVA domain and the device's 32-bit-first flag.
#[derive(Debug)]
struct Model {
    start_pfn: u64,
    d32: u64,
    max32: u64,
    /// Inclusive `(lo, hi)`, sorted by `lo`, disjoint; the anchor is `(ANCHOR, ANCHOR)`.
    nodes: Vec<(u64, u64)>,
    /// The `lo` of the cached nodes.
    cached: u64,
    cached32: u64,
    /// (cpu, bucket) -> pfns, oldest first.
    stacks: BTreeMap<(u32, u32), Vec<u64>>,
    nr_cpus: u32,
    pci_first: bool,
}

impl Model {
    fn new(shift: u32, start_pfn: u64, nr_cpus: u32, pci_first: bool) -> Model {
        let d32 = 1u64 << (32 - shift);
        Model {
            start_pfn,
            d32,
            max32: d32,
            nodes: vec![(ANCHOR, ANCHOR)],
            cached: ANCHOR,
            cached32: ANCHOR,
            stacks: BTreeMap::new(),
            nr_cpus,
            pci_first,
        }
    }

    /// §2.1 `reserve_iova`: overlapping reservations merge (only the union matters to a search).
    fn reserve(&mut self, lo: u64, hi: u64) {
        let (mut lo, mut hi) = (lo, hi);
        let mut keep = Vec::new();
        for &(a, b) in &self.nodes {
            if a != ANCHOR && a <= hi && lo <= b {
                lo = lo.min(a);
                hi = hi.max(b);
            } else {
                keep.push((a, b));
            }
        }
        keep.push((lo, hi));
        keep.sort_unstable();
        self.nodes = keep;
    }

    fn hi_of(&self, lo: u64) -> u64 {
        self.nodes
            .iter()
            .find(|n| n.0 == lo)
            .map_or(ANCHOR, |n| n.1)
    }

    /// The highest start `x >= low`, aligned to `align`, with `[x, x + size)` below `ceiling` and
    /// clear of every node.
    fn search(&self, size: u64, align: u64, ceiling: u64, low: u64) -> Option<u64> {
        let mut high = ceiling;
        loop {
            if high < size {
                return None;
            }
            let x = (high - size) & !(align - 1);
            if x < low {
                return None;
            }
            let last = x + size - 1;
            let blocker = self
                .nodes
                .iter()
                .filter(|&&(a, b)| a <= last && x <= b)
                .map(|&(a, _)| a)
                .min();
            match blocker {
                None => return Some(x),
                Some(a) => high = a,
            }
        }
    }

    /// §2.4 with `limit` exclusive.
    fn tree_alloc(&mut self, size: u64, limit: u64) -> Option<u64> {
        let align = pow2_ceil(size);
        if limit <= self.d32 && size >= self.max32 {
            return None;
        }
        let start = if limit <= self.d32 {
            self.cached32
        } else {
            self.cached
        };
        let retry_pfn = self.hi_of(start);
        let found = self
            .search(size, align, limit.min(start), self.start_pfn)
            .or_else(|| {
                if retry_pfn < limit {
                    self.search(size, align, limit, retry_pfn + 1)
                } else {
                    None
                }
            });
        let Some(x) = found else {
            self.max32 = size;
            return None;
        };
        let hi = x + size - 1;
        self.nodes.push((x, hi));
        self.nodes.sort_unstable();
        if hi < self.d32 {
            self.cached32 = x;
        } else {
            self.cached = x;
        }
        Some(x)
    }

    /// §2.4 removal of the node holding `pfn`.
    fn tree_free(&mut self, pfn: u64) {
        let Some(i) = self.nodes.iter().position(|&(a, b)| a <= pfn && pfn <= b) else {
            return;
        };
        let (lo, hi) = self.nodes[i];
        if lo == ANCHOR {
            return;
        }
        let next = self.nodes[i + 1].0;
        if lo == self.cached32 || (hi < self.d32 && lo >= self.cached32) {
            self.cached32 = next;
        }
        if lo < self.d32 {
            self.max32 = self.d32;
        }
        if lo >= self.cached {
            self.cached = next;
        }
        self.nodes.remove(i);
    }

    /// §2.3 `alloc_iova_fast` with `limit` inclusive; 0 on failure.
    fn alloc_fast(&mut self, cpu: u32, n: u64, limit: u64, flush: bool) -> u64 {
        let size = if n < 32 { pow2_ceil(n) } else { n };
        let bucket = order(size);
        if bucket < 6 {
            let stack = self.stacks.entry((cpu, bucket)).or_default();
            let fit = (limit + 1).wrapping_sub(size);
            if let Some(i) = stack.iter().rposition(|&p| p <= fit) {
                return stack.swap_remove(i);
            }
        }
        if let Some(x) = self.tree_alloc(size, limit + 1) {
            return x;
        }
        if !flush {
            return 0;
        }
        for c in 0..self.nr_cpus {
            for b in 0..6 {
                let pfns = self.stacks.remove(&(c, b)).unwrap_or_default();
                for p in pfns {
                    self.tree_free(p);
                }
            }
        }
        self.tree_alloc(size, limit + 1).unwrap_or(0)
    }

    /// §2.5 `free_iova_fast` with the unrounded granule count.
    fn free_fast(&mut self, cpu: u32, pfn: u64, n: u64) {
        let bucket = order(n);
        if bucket < 6 {
            self.stacks.entry((cpu, bucket)).or_default().push(pfn);
        } else {
            self.tree_free(pfn);
        }
    }

    /// §2.2 `iommu_dma_alloc_iova` for `n` granules under the byte limit `limit`; the pfn or 0.
    fn dma_alloc(&mut self, cpu: u32, n: u64, limit: u64, shift: u32) -> u64 {
        if limit > 0xFFFF_FFFF && self.pci_first {
            let pfn = self.alloc_fast(cpu, n, 0xFFFF_FFFF >> shift, false);
            if pfn != 0 {
                return pfn;
            }
            self.pci_first = false;
        }
        self.alloc_fast(cpu, n, limit >> shift, true)
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// try_alloc of `granules` granules minus `short` bytes at `phys`, on `cpu`.
    Alloc {
        phys: u64,
        granules: u64,
        short: u64,
        cpu: u32,
    },
    /// Free the live state picked by `which` (modulo their number) on `cpu`.
    Free { which: usize, cpu: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    let granules = prop_oneof![
        4 => 1u64..=40,
        2 => 33u64..=300,
        1 => (8u32..=20).prop_map(|k| 1u64 << k),
    ];
    prop_oneof![
        3 => (any::<u64>(), granules, 0u64..0x800, 0u32..3)
            .prop_map(|(phys, granules, short, cpu)| Op::Alloc { phys, granules, short, cpu }),
        2 => (any::<usize>(), 0u32..3).prop_map(|(which, cpu)| Op::Free { which, cpu }),
    ]
}

/// A live reservation as the caller sees it, and what the model freed it with.
struct Live {
    state: IovaState,
    pfn: u64,
    granules: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every try_alloc of the reference returns what the naive model returns (IOVA-01..05, as
    /// the linux profile demands), and every reservation keeps the semantic invariants.
    #[test]
    fn reference_matches_naive_model(
        ops in prop::collection::vec(op(), 1..120),
        pci in any::<bool>(),
        forcedac in any::<bool>(),
        mask_bits in prop::sample::select(vec![28u32, 32, 40, 64]),
        bus_dma_limit in prop::sample::select(vec![0u64, 0xF_FFFF, 0x3F_FFFF, 0xFFF_FFFF, 0xF_FFFF_FFFF]),
        shift in prop::sample::select(vec![11u32, 12, 14, 16]),
        aperture_start in prop::sample::select(vec![0u64, 0x10_0000, 0x100_0000]),
        aperture_end in prop::sample::select(vec![(1u64 << 48) - 1, 0x7FFF_FFFF]),
        regions in prop::sample::subsequence(vec![0usize, 1, 2, 3], 0..=4),
        nr_cpus in 1u32..=3,
    ) {
        let g = 1u64 << shift;
        let mut facts = x86_facts();
        facts.pci = pci;
        facts.forcedac = forcedac;
        facts.nr_cpus = nr_cpus;
        facts.pgsize_bitmap = g | (g << 9);
        facts.aperture_start = aperture_start;
        facts.aperture_end = aperture_end;
        facts.dma_mask = if mask_bits == 64 { u64::MAX } else { (1 << mask_bits) - 1 };
        facts.bus_dma_limit = bus_dma_limit;
        let all = [
            Region { start: 0xA_0000, end: 0xB_FFFF, kind: RegionKind::PciWindow },
            Region { start: 0x8000_0000, end: 0xAFFF_FFFF, kind: RegionKind::PciWindow },
            Region { start: 0xFEE0_0000, end: 0xFEEF_FFFF, kind: RegionKind::Msi },
            Region { start: 0x3_0000, end: 0x3_0FFF, kind: RegionKind::Reserved },
        ];
        let mut f = Fake::new(facts);
        f.regions = regions.iter().map(|&i| all[i]).collect();

        // The limit of §2.2 and the model's domain (§2.1).
        let mut limit = match (facts.dma_mask, bus_dma_limit) {
            (m, 0) => m,
            (m, b) => m.min(b),
        };
        limit = limit.min(aperture_end);
        let start_pfn = (aperture_start >> shift).max(1);
        let mut model = Model::new(shift, start_pfn, nr_cpus, pci && !forcedac);
        let mut reserved = Vec::new();
        for r in &f.regions {
            if pci || r.kind != RegionKind::PciWindow {
                model.reserve(r.start >> shift, r.end >> shift);
                reserved.push((r.start & !(g - 1), (r.end | (g - 1))));
            }
        }

        let mut r = Reference::new();
        prop_assert_eq!(r.probe(&mut f), 0);
        let mut live: Vec<Live> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc { phys, granules, short, cpu } => {
                    let cpu = cpu % nr_cpus;
                    f.cpu = cpu;
                    let size = (granules * g).saturating_sub(short.min(g - 1)).max(1);
                    let off = phys & (g - 1);
                    let n = (size + off).div_ceil(g);
                    let want = model.dma_alloc(cpu, n, limit, shift);
                    let mut s = IovaState { addr: 0xdead, size: 0xbeef };
                    let ok = r.iova_try_alloc(&mut f, &mut s, phys, size);
                    prop_assert_eq!(ok, want != 0, "model pfn {:#x} for {} granules", want, n);
                    if !ok {
                        prop_assert_eq!((s.addr, s.size), (0, 0));
                        continue;
                    }
                    prop_assert_eq!(s.addr, (want << shift) + off);
                    // Semantic invariants: offset and size kept, inside [lowest, limit], no
                    // overlap with a live reservation or a reserved region.
                    prop_assert_eq!(s.size, size);
                    let base = s.addr - off;
                    let last = base + n * g - 1;
                    prop_assert!(base >= start_pfn << shift);
                    prop_assert!(last <= limit, "{:#x} above {:#x}", last, limit);
                    for l in &live {
                        let lb = l.pfn << shift;
                        let ll = lb + l.granules * g - 1;
                        prop_assert!(last < lb || base > ll, "overlaps {:#x}..={:#x}", lb, ll);
                    }
                    for &(a, b) in &reserved {
                        prop_assert!(last < a || base > b, "overlaps reserved {:#x}..={:#x}", a, b);
                    }
                    live.push(Live { state: s, pfn: want, granules: n });
                }
                Op::Free { which, cpu } => {
                    if live.is_empty() {
                        continue;
                    }
                    let l = live.swap_remove(which % live.len());
                    let cpu = cpu % nr_cpus;
                    f.cpu = cpu;
                    r.iova_free(&mut f, &l.state);
                    model.free_fast(cpu, l.pfn, l.granules);
                }
            }
        }
    }
}

/// The model itself against §2.7's worked example, so a disagreement above can be blamed on
/// the right side.
#[test]
fn model_reproduces_worked_example() {
    let mut m = Model::new(12, 1, 1, false);
    let limit = 0xFFFF_FFFF;
    let a = m.dma_alloc(0, 1, limit, 12);
    let b = m.dma_alloc(0, 3, limit, 12);
    let c = m.dma_alloc(0, 8, limit, 12);
    let d = m.dma_alloc(0, 1, limit, 12);
    assert_eq!([a, b, c, d], [0xFFFFF, 0xFFFF8, 0xFFFF0, 0xFFFEF]);
    m.free_fast(0, b, 3);
    assert_eq!(m.dma_alloc(0, 2, limit, 12), 0xFFFEC);
    let big = m.dma_alloc(0, 64, limit, 12);
    assert_eq!(big, 0xFFF80);
    m.free_fast(0, big, 64);
    assert_eq!(m.dma_alloc(0, 64, limit, 12), 0xFFF80);
}
