//! Property tests: IOVA invariants under random alloc/free sequences (TRYALLOC-07, IOVA-01),
//! and no panic on arbitrary arguments to every call.

use proptest::prelude::*;

use dmaconf_platform::{Attrs, Dir, DmaApi, IovaState, Region, RegionKind, DMA_IOVA_USE_SWIOTLB};

use super::fake::{x86_facts, Fake};
use crate::Reference;

#[derive(Clone, Debug)]
enum Op {
    /// try_alloc(phys, size) on a CPU.
    Alloc { phys: u64, size: u64, cpu: u32 },
    /// Free the n-th live state (modulo their number) on a CPU.
    Free { which: usize, cpu: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u64>(), 1u64..0x10_0000, 0u32..3)
            .prop_map(|(phys, size, cpu)| Op::Alloc { phys, size, cpu }),
        3 => (1u64..0x2_0000, 0u32..3)
            .prop_map(|(size, cpu)| Op::Alloc { phys: 0, size, cpu }),
        2 => (any::<usize>(), 0u32..3).prop_map(|(which, cpu)| Op::Free { which, cpu }),
    ]
}

/// The reserved range `[lo, hi)` in bytes of a live state.
fn span(s: &IovaState, g: u64) -> (u64, u64) {
    let pad = s.addr & (g - 1);
    let len = (s.size + pad).div_ceil(g) * g;
    (s.addr - pad, s.addr - pad + len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Live ranges never overlap each other or a reserved region, never include IOVA 0, stay
    /// under the limit, and start aligned to roundup_pow_of_two(granules); phys's in-granule
    /// offset is kept.
    #[test]
    fn alloc_free_invariants(
        ops in prop::collection::vec(op(), 1..200),
        pci in any::<bool>(),
        mask_bits in prop::sample::select(vec![28u32, 32, 40, 64]),
        granule_shift in prop::sample::select(vec![12u32, 14, 16]),
        aperture_start in prop::sample::select(vec![0u64, 0x10_0000, 0xFFF0_0000]),
        reserve in any::<bool>(),
    ) {
        let g = 1u64 << granule_shift;
        let mut facts = x86_facts();
        facts.pci = pci;
        facts.nr_cpus = 3;
        facts.pgsize_bitmap = g | (g << 9);
        facts.aperture_start = aperture_start;
        facts.dma_mask = if mask_bits == 64 { u64::MAX } else { (1 << mask_bits) - 1 };
        let limit = facts.dma_mask.min(facts.aperture_end);
        let mut f = Fake::new(facts);
        let resv = Region { start: 0xFEE0_0000, end: 0xFEEF_FFFF, kind: RegionKind::Msi };
        if reserve {
            f.regions.push(resv);
        }
        let mut r = Reference::new();
        prop_assert_eq!(r.probe(&mut f), 0);
        let mut live: Vec<IovaState> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc { phys, size, cpu } => {
                    f.cpu = cpu;
                    let mut s = IovaState { addr: 0xdead, size: 0xbeef };
                    if r.iova_try_alloc(&mut f, &mut s, phys, size) {
                        prop_assert_eq!(s.size, size);
                        prop_assert_eq!(s.addr & (g - 1), phys & (g - 1));
                        let (lo, hi) = span(&s, g);
                        prop_assert!(lo != 0);
                        prop_assert!(lo >= aperture_start);
                        prop_assert!(hi - 1 <= limit, "{:#x} above limit {:#x}", hi - 1, limit);
                        let granules = (hi - lo) / g;
                        // Sizes under 32 granules are rounded up to a power of two; every
                        // start is aligned to roundup_pow_of_two of the (rounded) size.
                        let align = granules.next_power_of_two();
                        prop_assert_eq!((lo / g) % align, 0);
                        if reserve {
                            prop_assert!(hi <= resv.start || lo > resv.end);
                        }
                        for t in &live {
                            let (tlo, thi) = span(t, g);
                            prop_assert!(hi <= tlo || thi <= lo,
                                "{:#x}..{:#x} overlaps {:#x}..{:#x}", lo, hi, tlo, thi);
                        }
                        live.push(s);
                    } else {
                        prop_assert_eq!(s, IovaState::default());
                    }
                }
                Op::Free { which, cpu } => {
                    if !live.is_empty() {
                        f.cpu = cpu;
                        let s = live.swap_remove(which % live.len());
                        r.iova_free(&mut f, &s);
                    }
                }
            }
        }
        prop_assert!(f.take().is_empty());
    }

    /// Every call accepts any arguments without panicking (the reference's contract), on
    /// coherent/non-coherent, trusted/untrusted, both backends.
    #[test]
    fn no_panic_on_any_input(
        calls in prop::collection::vec(
            (0u8..6, any::<u64>(), any::<u64>(), any::<u64>(), any::<u32>(), any::<u64>()),
            1..40),
        coherent in any::<bool>(),
        untrusted in any::<bool>(),
        kmalloc in any::<bool>(),
        iommupt in any::<bool>(),
        small in any::<bool>(),
    ) {
        let mut facts = x86_facts();
        facts.coherent = coherent;
        facts.untrusted = untrusted;
        facts.kmalloc_bounce = kmalloc;
        facts.min_align_mask = 0xFFF;
        if !iommupt {
            facts.backend = dmaconf_platform::PgtableBackend::IoPgtableArm;
        }
        let mut f = Fake::new(facts);
        let mut r = Reference::new();
        prop_assert_eq!(r.probe(&mut f), 0);
        let mut s = IovaState::default();
        for (kind, a, b, c, dir, attrs) in calls {
            // Small values reach the interesting paths more often.
            let (a, b, c) = if small { (a & 0xF_FFFF, b & 0xF_FFFF, c & 0x3_FFFF) } else { (a, b, c) };
            let dir = Dir(dir % 6);
            let attrs = Attrs(attrs & 0x3FFF);
            match kind {
                0 => { r.iova_try_alloc(&mut f, &mut s, a, c); }
                1 => { r.iova_link(&mut f, &mut s, a, b, c, dir, attrs); }
                2 => { r.iova_sync(&mut f, &s, b, c); }
                3 => { r.iova_unlink(&mut f, &s, b, c, dir, attrs); }
                4 => { r.iova_destroy(&mut f, &s, c, dir, attrs); }
                _ => {
                    if a & 1 == 0 { s.size ^= DMA_IOVA_USE_SWIOTLB; }
                    r.iova_free(&mut f, &s);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Odd platforms (any page-size bitmap including a 1-byte granule, any aperture, masks and
    /// reserved regions) never make probe or the calls panic.
    #[test]
    fn no_panic_on_odd_platforms(
        pgsize_bitmap in prop_oneof![Just(1u64), Just(0x1000u64), Just(0x1_0000u64), any::<u64>()],
        aperture in (any::<u64>(), any::<u64>()),
        force_aperture in any::<bool>(),
        masks in (any::<u64>(), any::<u64>(), any::<u64>()),
        flags in (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        regions in prop::collection::vec((any::<u64>(), any::<u64>(), 0u8..5), 0..6),
        calls in prop::collection::vec(
            (0u8..6, any::<u64>(), any::<u64>(), any::<u64>(), 0u32..5),
            1..30),
    ) {
        let mut facts = x86_facts();
        facts.pgsize_bitmap = pgsize_bitmap;
        facts.aperture_start = aperture.0;
        facts.aperture_end = aperture.1;
        facts.force_aperture = force_aperture;
        facts.dma_mask = masks.0;
        facts.bus_dma_limit = masks.1;
        facts.min_align_mask = masks.2;
        facts.coherent = flags.0;
        facts.untrusted = flags.1;
        facts.pci = flags.2;
        facts.forcedac = flags.3;
        facts.kmalloc_bounce = flags.4;
        let mut f = Fake::new(facts);
        for (a, b, k) in regions {
            let kind = match k {
                0 => RegionKind::PciWindow,
                1 => RegionKind::DmaRangeGap,
                2 => RegionKind::Msi,
                3 => RegionKind::Reserved,
                _ => RegionKind::Direct,
            };
            f.regions.push(Region { start: a.min(b), end: a.max(b), kind });
        }
        let mut r = Reference::new();
        r.probe(&mut f);
        let mut s = IovaState::default();
        for (kind, a, b, c, cpu) in calls {
            f.cpu = cpu;
            let c = c >> (a % 64);
            match kind {
                0 => { r.iova_try_alloc(&mut f, &mut s, a, c); }
                1 => { r.iova_link(&mut f, &mut s, a, b & 0xFFFF, c, Dir::BIDIRECTIONAL, Attrs(0)); }
                2 => { r.iova_sync(&mut f, &s, b, c); }
                3 => { r.iova_unlink(&mut f, &s, b & 0xFFFF, c, Dir::FROM_DEVICE, Attrs(0)); }
                4 => { r.iova_destroy(&mut f, &s, c, Dir::TO_DEVICE, Attrs(0)); }
                _ => { r.iova_free(&mut f, &s); }
            }
        }
        r.probe(&mut f);
    }
}
