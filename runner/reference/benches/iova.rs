//! IOVA allocation cost through the reference's `DmaApi` (IOVA-01..05).
//!
//! * `mixed_1e5`: 10^5 try_alloc / free calls in a fixed pseudo-random mix (sizes of 1-64
//!   granules, so both the rcache and the tree are used; at most 1024 live states) on a fresh
//!   domain of a PCI device with a 64-bit mask on the q35 reserved regions. One iteration is the
//!   whole sequence: median time / 10^5 is the cost per call.
//! * `reserve_2_48`: one try_alloc of 2^48 bytes (2^36 granules) on a fresh domain with a 57-bit
//!   aperture. The cost does not depend on the size: a reservation is one tree node.
//!
//! The platform is a stub: try_alloc and free make no platform calls beyond facts, reserved
//! regions and the CPU number.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use dmaconf_platform::{
    Dir, DmaApi, IovaState, Platform, PlatformFacts, Prot, Region, RegionKind, WarnCode,
};
use dmaconf_reference::Reference;

/// Facts and reserved regions only; every other service is a no-op.
struct Stub {
    facts: PlatformFacts,
    regions: Vec<Region>,
}

impl Platform for Stub {
    fn facts(&self) -> PlatformFacts {
        self.facts
    }
    fn reserved_region(&self, index: u32) -> Option<Region> {
        self.regions.get(index as usize).copied()
    }
    fn current_cpu(&self) -> u32 {
        0
    }
    fn iommu_map(&mut self, _iova: u64, _phys: u64, _len: u64, _prot: Prot) -> i32 {
        0
    }
    fn iotlb_sync_map(&mut self, _iova: u64, _len: u64) -> i32 {
        0
    }
    fn iommu_unmap(&mut self, _iova: u64, len: u64) -> u64 {
        len
    }
    fn iotlb_sync(&mut self, _iova: u64, _len: u64) {}
    fn flush_iotlb_all(&mut self) {}
    fn iova_to_phys(&self, _iova: u64) -> u64 {
        0
    }
    fn sync_for_device(&mut self, _phys: u64, _len: u64, _dir: Dir) {}
    fn sync_for_cpu(&mut self, _phys: u64, _len: u64, _dir: Dir) {}
    fn sync_barrier(&mut self) {}
    fn bounce_alloc(
        &mut self,
        _orig: u64,
        _len: u64,
        _alloc_align_mask: u64,
        _min_align_mask: u64,
        _slot: &mut u64,
    ) -> i32 {
        -12
    }
    fn bounce_free(&mut self, _slot: u64, _len: u64) {}
    fn is_bounce(&self, _phys: u64) -> bool {
        false
    }
    fn bounce_orig(&self, _phys: u64) -> u64 {
        0
    }
    fn copy(&mut self, _dst: u64, _src: u64, _len: u64) {}
    fn fill(&mut self, _dst: u64, _byte: u8, _len: u64) {}
    fn warn(&mut self, _code: WarnCode) {}
}

fn facts(aperture_end: u64, pci: bool) -> PlatformFacts {
    PlatformFacts {
        aperture_end,
        pci,
        swiotlb: true,
        ..PlatformFacts::default()
    }
}

/// The q35 host-bridge windows and MSI window of the x86-vtd-q35 preset.
fn q35_regions() -> Vec<Region> {
    let w = |start, end| Region {
        start,
        end,
        kind: RegionKind::PciWindow,
    };
    vec![
        w(0xA_0000, 0xB_FFFF),
        w(0x8000_0000, 0xAFFF_FFFF),
        w(0xC000_0000, 0xFEBF_FFFF),
        w(0x1_C000_0000, 0x9_BFFF_FFFF),
        Region {
            start: 0xFEE0_0000,
            end: 0xFEEF_FFFF,
            kind: RegionKind::Msi,
        },
    ]
}

fn probed(facts: PlatformFacts, regions: Vec<Region>) -> (Reference, Stub) {
    let mut p = Stub { facts, regions };
    let mut r = Reference::new();
    assert_eq!(r.probe(&mut p), 0);
    (r, p)
}

/// xorshift64: a fixed sequence, so every iteration does the same work.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

const MIXED_OPS: usize = 100_000;

/// 10^5 calls: allocate while fewer than 1024 states are live and a coin says so, else free a
/// random live one.
fn mixed(r: &mut Reference, p: &mut Stub) -> u64 {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut live: Vec<IovaState> = Vec::with_capacity(1024);
    let mut sum = 0u64;
    for _ in 0..MIXED_OPS {
        let x = next(&mut seed);
        if live.is_empty() || (live.len() < 1024 && x & 1 == 0) {
            let granules = match (x >> 8) % 8 {
                0..=5 => 1 + (x >> 16) % 8,
                6 => 1 + (x >> 16) % 32,
                _ => 33 + (x >> 16) % 32,
            };
            let mut s = IovaState::default();
            if r.iova_try_alloc(p, &mut s, x & 0xFFF, granules * 0x1000 - (x >> 40) % 0x800) {
                sum = sum.wrapping_add(s.addr);
                live.push(s);
            }
        } else {
            let i = ((x >> 24) as usize) % live.len();
            let s = live.swap_remove(i);
            r.iova_free(p, &s);
        }
    }
    sum
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("iova");
    g.sample_size(30);
    g.bench_function("mixed_1e5", |b| {
        b.iter_batched(
            || probed(facts((1 << 48) - 1, true), q35_regions()),
            |(mut r, mut p)| black_box(mixed(&mut r, &mut p)),
            BatchSize::LargeInput,
        )
    });
    g.sample_size(100);
    g.bench_function("reserve_2_48", |b| {
        b.iter_batched(
            || probed(facts((1 << 57) - 1, false), Vec::new()),
            |(mut r, mut p)| {
                let mut s = IovaState::default();
                assert!(r.iova_try_alloc(&mut p, &mut s, 0, 1 << 48));
                black_box(s.addr)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
