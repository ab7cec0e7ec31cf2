//! IOVA addresses: KERNEL-FACTS §2.7 and variations (IOVA-01..05, TRYALLOC-06..09).

use dmaconf_platform::{DmaApi, IovaState, Region, RegionKind};

use super::fake::{x86_facts, Fake};
use super::{alloc, probed};
use crate::Reference;

const G: u64 = 0x1000;

/// Frees a state (FREE-01) and checks it made no platform call and left the state alone.
fn free(r: &mut Reference, f: &mut Fake, s: &IovaState) {
    let before = *s;
    r.iova_free(f, s);
    assert_eq!(*s, before);
    assert!(f.take().is_empty());
}

/// §2.7 rows A-D: 1, 3 (rounded to 4), 8, 1 granules, top-down next-fit from 4 GiB.
/// A: high = 0x100000 -> 0xFFFFF. B: (0xFFFFF - 4) & ~3 = 0xFFFF8. C: (0xFFFF8 - 8) & ~7 =
/// 0xFFFF0. D: 0xFFFF0 - 1 = 0xFFFEF.
#[test]
fn worked_example_rows_a_to_d() {
    let (mut r, mut f) = probed(x86_facts());
    let a = alloc(&mut r, &mut f, 0, G);
    let b = alloc(&mut r, &mut f, 0, 3 * G);
    let c = alloc(&mut r, &mut f, 0, 8 * G);
    let d = alloc(&mut r, &mut f, 0, G);
    assert_eq!(
        a,
        IovaState {
            addr: 0xFFFF_F000,
            size: G
        }
    );
    assert_eq!(
        b,
        IovaState {
            addr: 0xFFFF_8000,
            size: 3 * G
        }
    );
    assert_eq!(
        c,
        IovaState {
            addr: 0xFFFF_0000,
            size: 8 * G
        }
    );
    assert_eq!(
        d,
        IovaState {
            addr: 0xFFFE_F000,
            size: G
        }
    );
    // TRYALLOC-09: no mapping, cache or IOTLB work.
    assert!(f.take().is_empty());
}

fn four(r: &mut Reference, f: &mut Fake) -> [IovaState; 4] {
    [
        alloc(r, f, 0, G),
        alloc(r, f, 0, 3 * G),
        alloc(r, f, 0, 8 * G),
        alloc(r, f, 0, G),
    ]
}

fn addrs(r: &mut Reference, f: &mut Fake) -> [u64; 4] {
    four(r, f).map(|s| s.addr)
}

/// Freeing A, B, C, D: bucket0 = [0xFFFFF, 0xFFFEF] (LIFO), bucket2 = [0xFFFF8],
/// bucket3 = [0xFFFF0]. Re-allocating 1, 3, 8, 1 pops D's pfn first.
#[test]
fn lifo_reuse_after_free_abcd() {
    let (mut r, mut f) = probed(x86_facts());
    let s = four(&mut r, &mut f);
    for st in &s {
        free(&mut r, &mut f, st);
    }
    assert_eq!(
        addrs(&mut r, &mut f),
        [0xFFFE_F000, 0xFFFF_8000, 0xFFFF_0000, 0xFFFF_F000]
    );
}

/// Freeing D, C, B, A gives the original sequence back.
#[test]
fn lifo_reuse_after_free_dcba() {
    let (mut r, mut f) = probed(x86_facts());
    let s = four(&mut r, &mut f);
    for st in s.iter().rev() {
        free(&mut r, &mut f, st);
    }
    assert_eq!(
        addrs(&mut r, &mut f),
        [0xFFFF_F000, 0xFFFF_8000, 0xFFFF_0000, 0xFFFE_F000]
    );
}

/// After freeing B only, 2 granules miss the rcache (bucket 1) and walk the tree from
/// cached32 = D: (0xFFFEF - 2) & ~1 = 0xFFFEC.
#[test]
fn two_granules_after_freeing_b() {
    let (mut r, mut f) = probed(x86_facts());
    let s = four(&mut r, &mut f);
    free(&mut r, &mut f, &s[1]);
    assert_eq!(alloc(&mut r, &mut f, 0, 2 * G).addr, 0xFFFE_C000);
}

/// 64 granules after D: (0xFFFEF - 64) & ~63 = 0xFFF80. Not cacheable: the free removes it
/// from the tree and moves cached32 back to D, so the same request gets the same range.
#[test]
fn sixty_four_granules_and_reallocation() {
    let (mut r, mut f) = probed(x86_facts());
    four(&mut r, &mut f);
    let big = alloc(&mut r, &mut f, 0, 64 * G);
    assert_eq!(big.addr, 0xFFF8_0000);
    free(&mut r, &mut f, &big);
    assert_eq!(alloc(&mut r, &mut f, 0, 64 * G).addr, 0xFFF8_0000);
}

/// TRYALLOC-06: only phys's in-granule offset matters: 0x2E00 bytes -> 3 granules -> 4,
/// addr = base + 0xE00.
#[test]
fn phys_offset_is_kept_and_counted() {
    let (mut r, mut f) = probed(x86_facts());
    let s = alloc(&mut r, &mut f, 0x1234_5E00, 0x2000);
    assert_eq!(
        s,
        IovaState {
            addr: 0xFFFF_CE00,
            size: 0x2000
        }
    );
    // Freeing gives back iova_align(0x2000 + 0xE00) = 3 granules -> bucket 2 (order_base_2(3)).
    free(&mut r, &mut f, &s);
    let (loaded, _) = r.iova_domain().unwrap().rcaches().cpu_magazines(0, 2);
    assert_eq!(loaded, vec![0xF_FFFC]);
}

/// 64-bit non-PCI device with a 48-bit forced aperture: limit = 2^48 - 1, the walk starts at
/// the anchor: 0xFFFFFFFFF000.
#[test]
fn non_pci_64bit_48bit_aperture() {
    let mut facts = x86_facts();
    facts.pci = false;
    facts.dma_mask = u64::MAX;
    let (mut r, mut f) = probed(facts);
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0xFFFF_FFFF_F000);
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0xFFFF_FFFF_E000);
}

/// A 64-bit PCI device allocates below 4 GiB first (IOVA-03).
#[test]
fn pci_64bit_tries_32bit_first() {
    let mut facts = x86_facts();
    facts.dma_mask = u64::MAX;
    let (mut r, mut f) = probed(facts);
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0xFFFF_F000);
    // iommu.forcedac=1: straight to the top of the aperture.
    facts.forcedac = true;
    let (mut r, mut f) = probed(facts);
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0xFFFF_FFFF_F000);
}

/// IOVA-03: the first failed 32-bit attempt turns it off for good.
/// Reserved [0, 0xFFF7FFFF] leaves 128 granules under 4 GiB. Two 64-granule requests take
/// 0xFFFC0 and 0xFFF80. The third fails below 4 GiB (first pass into the reserved node, retry
/// window above 0xFFF80's node is full) and falls back to the 48-bit limit: from the anchor,
/// 0x1000000000 - 64 = 0xFFFFFFFC0. After freeing 0xFFFC0000 (64 granules: back to the tree)
/// a new request does not look below 4 GiB any more: from cached_node 0xFFFFFFFC0 it gets
/// 0xFFFFFFF80.
#[test]
fn pci_32bit_fallback_is_permanent() {
    let mut facts = x86_facts();
    facts.dma_mask = u64::MAX;
    let mut f = Fake::new(facts);
    f.regions.push(Region {
        start: 0,
        end: 0xFFF7_FFFF,
        kind: RegionKind::Reserved,
    });
    let mut r = Reference::new();
    assert_eq!(r.probe(&mut f), 0);
    let a = alloc(&mut r, &mut f, 0, 64 * G);
    let b = alloc(&mut r, &mut f, 0, 64 * G);
    assert_eq!((a.addr, b.addr), (0xFFFC_0000, 0xFFF8_0000));
    assert!(r.device().unwrap().pci_32bit_workaround);
    let c = alloc(&mut r, &mut f, 0, 64 * G);
    assert_eq!(c.addr, 0xFFFF_FFFC_0000);
    assert!(!r.device().unwrap().pci_32bit_workaround);
    free(&mut r, &mut f, &a);
    assert_eq!(alloc(&mut r, &mut f, 0, 64 * G).addr, 0xFFFF_FFF8_0000);
}

/// IOVA-05: a PCI window covering the top 1 MiB below 4 GiB pushes the first allocation
/// below it: from the anchor, 0xFFFFF overlaps the window [0xFFF00, 0xFFFFF], so the walk
/// drops below it: 0xFFF00 - 1 = 0xFFEFF.
#[test]
fn reserved_region_forces_allocation_below() {
    let mut f = Fake::new(x86_facts());
    f.regions.push(Region {
        start: 0xFFF0_0000,
        end: 0xFFFF_FFFF,
        kind: RegionKind::PciWindow,
    });
    let mut r = Reference::new();
    assert_eq!(r.probe(&mut f), 0);
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0xFFEF_F000);
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0xFFEF_E000);

    // Host-bridge windows are reserved for PCI devices only (iova_reserve_pci_windows).
    let mut facts = x86_facts();
    facts.pci = false;
    let mut f = Fake::new(facts);
    f.regions.push(Region {
        start: 0xFFF0_0000,
        end: 0xFFFF_FFFF,
        kind: RegionKind::PciWindow,
    });
    let mut r = Reference::new();
    assert_eq!(r.probe(&mut f), 0);
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0xFFFF_F000);
}

/// IOVA-05: an MSI window in the middle of the space: a 2 MiB request (512 granules) from the
/// anchor would be (0x100000 - 512) & ~511 = 0xFFE00 (clear of [0xFEE00, 0xFEEFF]); the next
/// one, from 0xFFE00, is 0xFFC00; ... walking down, the request whose candidate overlaps the
/// window slides below it: candidates 0xFFE00, 0xFFC00, 0xFFA00, 0xFF800, 0xFF600, 0xFF400,
/// 0xFF200, 0xFF000, then 0xFEE00 overlaps [0xFEE00, 0xFEEFF] -> below it: 0xFEC00.
#[test]
fn msi_window_is_skipped() {
    let mut f = Fake::new(x86_facts());
    f.regions.push(Region {
        start: 0xFEE0_0000,
        end: 0xFEEF_FFFF,
        kind: RegionKind::Msi,
    });
    let mut r = Reference::new();
    assert_eq!(r.probe(&mut f), 0);
    let got: Vec<u64> = (0..9)
        .map(|_| alloc(&mut r, &mut f, 0, 512 * G).addr)
        .collect();
    assert_eq!(
        got,
        vec![
            0xFFE0_0000,
            0xFFC0_0000,
            0xFFA0_0000,
            0xFF80_0000,
            0xFF60_0000,
            0xFF40_0000,
            0xFF20_0000,
            0xFF00_0000,
            0xFEC0_0000,
        ]
    );
}

/// TRYALLOC-07: bus_dma_limit below the mask wins (min_not_zero): 28 bits -> 0xFFFF000.
#[test]
fn bus_dma_limit_caps_the_mask() {
    let mut facts = x86_facts();
    facts.bus_dma_limit = 0x0FFF_FFFF;
    let (mut r, mut f) = probed(facts);
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0x0FFF_F000);
}

/// TRYALLOC-07: the aperture start sets start_pfn; with 16 granules left the first request
/// takes them all and the next fails (TRYALLOC-08: false, state zero, no calls).
#[test]
fn exhaustion_returns_false_with_zero_state() {
    let mut facts = x86_facts();
    facts.aperture_start = 0xFFFF_0000;
    let (mut r, mut f) = probed(facts);
    assert_eq!(alloc(&mut r, &mut f, 0, 16 * G).addr, 0xFFFF_0000);
    let mut s = IovaState { addr: 7, size: 9 };
    assert!(!r.iova_try_alloc(&mut f, &mut s, 0, G));
    assert_eq!(s, IovaState::default());
    assert!(f.take().is_empty());
    assert_eq!(r.iova_domain().unwrap().tree().max32_alloc_size(), 1);
}

/// Rcache reuse is per CPU: a range freed on CPU 0 is not seen by CPU 1, which walks the tree.
#[test]
fn rcache_is_per_cpu() {
    let mut facts = x86_facts();
    facts.nr_cpus = 2;
    let (mut r, mut f) = probed(facts);
    let a = alloc(&mut r, &mut f, 0, G); // 0xFFFFF
    free(&mut r, &mut f, &a);
    f.cpu = 1;
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0xFFFF_E000);
    f.cpu = 0;
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0xFFFF_F000);
}

/// Exhaustion flushes every CPU's caches back to the tree and retries: 16 granules of space,
/// 16 single granules allocated and freed on CPU 0 (all cached), then a 16-granule request on
/// CPU 1 fails in the tree, flushes, and gets the whole space.
#[test]
fn exhaustion_flushes_rcaches_and_retries() {
    let mut facts = x86_facts();
    facts.aperture_start = 0xFFFF_0000;
    facts.nr_cpus = 2;
    let (mut r, mut f) = probed(facts);
    let singles: Vec<IovaState> = (0..16).map(|_| alloc(&mut r, &mut f, 0, G)).collect();
    assert_eq!(singles[15].addr, 0xFFFF_0000);
    for s in &singles {
        free(&mut r, &mut f, s);
    }
    f.cpu = 1;
    assert_eq!(alloc(&mut r, &mut f, 0, 16 * G).addr, 0xFFFF_0000);
}
