//! Slot-search tests. Expected slots are worked out by hand from KERNEL-FACTS.md §3.2 (the
//! working is in each comment), and a deliberately naive second model written only from that
//! section (a used-slot bitmap instead of free-run counters) is run against the pool on a
//! long pseudo-random sequence.

use super::*;

const BASE: u64 = 0x8000_0000;

fn pool(nslabs: u64, nr_cpus: u32, pci: bool) -> SwiotlbPool {
    SwiotlbPool::new(Some(SwiotlbConfig::linux(BASE, nslabs, nr_cpus, pci, 4096)))
}

fn ok(a: BounceAlloc) -> u64 {
    assert_eq!(a.ret, 0, "allocation failed");
    a.slot
}

#[test]
fn linux_geometry() {
    // 64 MiB, one CPU: 32768 slots in one area.
    let c = SwiotlbConfig::linux(BASE, DEFAULT_NSLABS, 1, true, 4096);
    assert_eq!(
        (c.nslabs, c.nareas, c.seg_boundary_mask),
        (32768, 1, 0xFFFF_FFFF)
    );
    // Three CPUs: four areas (rounded up to a power of two).
    assert_eq!(
        SwiotlbConfig::linux(BASE, DEFAULT_NSLABS, 3, false, 4096).nareas,
        4
    );
    // swiotlb=100 rounds to one segment; 384 rounds to 512 (a power of two).
    assert_eq!(SwiotlbConfig::linux(BASE, 100, 1, true, 4096).nslabs, 128);
    assert_eq!(SwiotlbConfig::linux(BASE, 384, 1, true, 4096).nslabs, 512);
    // 128 slots for 4 CPUs: raised to one segment per area, 512 slots, 4 areas.
    let c = SwiotlbConfig::linux(BASE, 128, 4, true, 4096);
    assert_eq!((c.nslabs, c.nareas), (512, 4));
    // A platform device has no segment boundary.
    assert_eq!(
        SwiotlbConfig::linux(BASE, 128, 1, false, 4096).seg_boundary_mask,
        u64::MAX
    );
}

/// KERNEL-FACTS §7.3: the NVMe-like head and tail of a 1 MiB link at phys 0x10000E00.
#[test]
fn nvme_head_and_tail() {
    let mut p = pool(DEFAULT_NSLABS, 1, true);
    // Head: offset = 0xE00 & 0xFFF & (0xFFF | 0x7FF) = 0xE00; size = ALIGN(0x200 + 0xE00,
    // 0x1000) = 0x1000, 2 slots; iotlb_align_mask = 0xFFF & ~0xFFF = 0; stride =
    // (0xFFF >> 11) + 1 = 2. Slot 0 (0x80000000) is 4 KiB aligned and its run is 128: taken.
    // pad_slots = 0xE00 >> 11 = 1, so the address is slot 1 + (0xE00 & 0x7FF) = 0x80000E00.
    let head = ok(p.alloc(0x1000_0E00, 0x200, 0xFFF, 0xFFF, 0));
    assert_eq!(head, 0x8000_0E00);
    assert_eq!(p.area_index(), vec![2]);
    // Tail: orig 0x10100000, offset 0, size 0x1000, 2 slots; next fit from slot 2
    // (0x80001000, aligned, run 126): taken.
    let tail = ok(p.alloc(0x1010_0000, 0xE00, 0xFFF, 0xFFF, 0));
    assert_eq!(tail, 0x8000_1000);
    assert_eq!((p.used(), p.area_index()), (vec![4], vec![4]));
    assert_eq!(p.live(), vec![(head, 0x200), (tail, 0xE00)]);
    // The original of a bounce byte: slot 1 shadows 0x10000E00 (pad slot 0 shadows nothing).
    assert_eq!(p.orig(head, 0xFFF), 0x1000_0E00);
    assert_eq!(p.orig(head + 0x1ff, 0xFFF), 0x1000_0FFF);
    assert_eq!(p.orig(BASE, 0xFFF), 0);
    assert_eq!(p.orig(tail + 0x10, 0xFFF), 0x1010_0010);
    // Release the head: offset = 0xE00 & 0x7FF = 0x600, slot (0xE00 - 0x600) >> 11 = 1, minus
    // its pad slot = 0; alloc_size of slot 0 = 0x1000 - 0x600, + 0x600 = 2 slots. Slot 2 is
    // used, so the freed run counts 2, 1.
    p.free(head, 0xFFF);
    assert_eq!(&p.free_runs()[..5], &[2, 1, 0, 0, 124]);
    assert_eq!(p.used(), vec![2]);
    // Release the tail: merges with the 124 above and the 2 below: slot 0 counts 128 again.
    p.free(tail, 0xFFF);
    assert_eq!(&p.free_runs()[..5], &[128, 127, 126, 125, 124]);
    assert!(p.live().is_empty());
    // The next-fit index does not move back on free: the next request starts at slot 4.
    assert_eq!(
        ok(p.alloc(0x1000_0E00, 0x200, 0xFFF, 0xFFF, 0)),
        0x8000_2E00
    );
}

/// KERNEL-FACTS §1.3 sharp edge: without a min_align_mask the head comes back granule aligned.
#[test]
fn no_min_align_mask_gives_an_aligned_slot() {
    let mut p = pool(DEFAULT_NSLABS, 1, true);
    // offset = 0x...064 & 0 = 0; size = ALIGN(0xF9C, 0x1000) = 0x1000: slot 0, no offset.
    assert_eq!(ok(p.alloc(0x4000_0064, 0xF9C, 0xFFF, 0, 0)), BASE);
}

/// Streaming-style request with a min_align_mask wider than a slot: bit 11 of the original
/// must be matched by the slot address (iotlb_align_mask = 0x800, stride 2).
#[test]
fn min_align_bits_above_the_slot_size() {
    let mut p = pool(DEFAULT_NSLABS, 1, true);
    // orig 0x1A00: offset = 0x1A00 & 0xFFF & (0 | 0x7FF) = 0x200, size = 0x100 + 0x200 =
    // 0x300 (align 1), 1 slot. Slot 0 has bit 11 clear: skipped; slot 1 (0x80000800): taken.
    let a = ok(p.alloc(0x1A00, 0x100, 0, 0xFFF, 0));
    assert_eq!(a, 0x8000_0A00);
    assert_eq!(&p.free_runs()[..3], &[1, 0, 126]);
    // Next: slot 2 has bit 11 clear, slot 3 (0x80001800) is taken; slot 2 becomes a run of 1.
    let b = ok(p.alloc(0x1A00, 0x100, 0, 0xFFF, 0));
    assert_eq!(b, 0x8000_1A00);
    assert_eq!(&p.free_runs()[..5], &[1, 0, 1, 0, 124]);
    assert_eq!(p.orig(a + 5, 0xFFF), 0x1A05);
    // Release a: offset 0x200, slot 1, alloc_size 0x100 + 0x200 = 1 slot; slot 2 above counts
    // 1, so slot 1 counts 2 and slot 0 counts 3.
    p.free(a, 0xFFF);
    assert_eq!(&p.free_runs()[..4], &[3, 2, 1, 0]);
}

/// A request of a page or more with no alignment constraint at all is page aligned; an
/// allocation never crosses a 128-slot segment.
#[test]
fn page_alignment_and_segment_limit() {
    let mut p = pool(DEFAULT_NSLABS, 1, true);
    // 127 slots, size >= PAGE_SIZE, no masks: alloc_align_mask = 0xFFF, stride 2: slot 0.
    assert_eq!(ok(p.alloc(0x10_0000, 127 * 2048, 0, 0, 0)), BASE);
    assert_eq!(p.area_index(), vec![127]);
    // 0xFFF bytes (2 slots, below a page: no page alignment, stride 1): slot 127 has a run of
    // 1 (segment end), so the search moves to slot 128.
    assert_eq!(ok(p.alloc(0x20_0123, 0xFFF, 0, 0, 0)), BASE + 128 * 2048);
    // More than a segment can never be found.
    assert_eq!(p.alloc(0, 129 * 2048, 0, 0, 0).ret, -12);
}

/// The area is chosen by the CPU; a full area sends the search to the next one.
#[test]
fn areas_follow_the_cpu() {
    // 256 slots for two CPUs: two areas of 128.
    let mut p = pool(256, 2, false);
    // CPU 1 starts in area 1: slot 128.
    assert_eq!(ok(p.alloc(0, 0x800, 0, 0, 1)), BASE + 128 * 2048);
    // CPU 3 & (2 - 1) = area 1 too: slot 129.
    assert_eq!(ok(p.alloc(0, 0x800, 0, 0, 3)), BASE + 129 * 2048);
    // Fill area 0 with one 128-slot request, then CPU 0 overflows into area 1 (slot 130).
    assert_eq!(ok(p.alloc(0, 128 * 2048, 0, 0, 0)), BASE);
    assert_eq!(ok(p.alloc(0, 0x800, 0, 0, 0)), BASE + 130 * 2048);
    assert_eq!(p.used(), vec![128, 3]);
}

/// A 64 KiB granule (alloc_align_mask 0xFFFF): every bounce is 32 slots; a 128-slot pool
/// holds four, the fifth fails, and a freed one is found again by the stride-32 scan.
#[test]
fn pool_full_and_reuse() {
    let mut p = pool(128, 1, true);
    let mut got = Vec::new();
    for k in 0..4u64 {
        got.push(ok(p.alloc(0x4000_0064 + k * 0x10000, 0xFF9C, 0xFFFF, 0, 0)));
    }
    assert_eq!(
        got,
        vec![BASE, BASE + 0x10000, BASE + 0x20000, BASE + 0x30000]
    );
    // The index wrapped to 0 (96 + 32 = 128 = area_nslabs).
    assert_eq!(p.area_index(), vec![0]);
    assert_eq!(p.alloc(0x5000_0064, 0xFF9C, 0xFFFF, 0, 0).ret, -12);
    p.free(BASE + 0x20000, 0);
    // From index 0, stride 32: slots 0 and 32 are used, slot 64 is free (run 32).
    assert_eq!(ok(p.alloc(0x5000_0064, 0x10, 0xFFFF, 0, 0)), BASE + 0x20000);
    assert_eq!(p.area_index(), vec![96]);
}

#[test]
fn no_pool_and_odd_inputs_never_panic() {
    let mut none = SwiotlbPool::new(None);
    assert_eq!(none.alloc(0x1000, 0x200, 0xFFF, 0xFFF, 0).ret, -12);
    none.free(0x8000_0000, 0);
    assert!(!none.contains(0) && none.live().is_empty());
    let mut p = pool(128, 1, true);
    // An alignment mask of all ones wraps ALIGN to size 0 (Linux: BUG_ON(!nslots)): refused.
    assert_eq!(p.alloc(1, 1, u64::MAX, 0, 0).ret, -12);
    for v in [0, 1, 0x7FF, 0x800, u64::MAX / 2, u64::MAX] {
        let _ = p.alloc(v, v, v, v, u32::MAX);
        p.free(v, v);
        p.free(BASE.wrapping_add(v), v);
        let _ = p.orig(v, v);
    }
    // Freeing what was never allocated does not leave a live allocation behind.
    let mut q = pool(128, 1, true);
    q.free(BASE + 0x800, 0);
    assert!(q.live().is_empty());
    assert_eq!(q.free_runs()[0], 128);
    // 512 slots of 2 KiB: [0x8000_0000, 0x8010_0000).
    let r = pool(512, 1, true);
    assert!(r.contains(0x8000_0000) && r.contains(0x800f_ffff));
    assert!(!r.contains(0x8010_0000) && !r.contains(0x7fff_ffff));
}

/// A second model written only from KERNEL-FACTS §3.2, naively: a bitmap of used slots, a
/// search that checks the free run slot by slot, and a release that clears the bitmap.
struct Naive {
    base: u64,
    area_nslabs: u64,
    nareas: u64,
    used: Vec<bool>,
    index: Vec<u64>,
    /// first slot (pad included) -> nslots, per live bounce address
    live: BTreeMap<u64, (u64, u64)>,
}

impl Naive {
    fn new(nslabs: u64, nareas: u64) -> Naive {
        Naive {
            base: BASE,
            area_nslabs: nslabs / nareas,
            nareas,
            used: vec![false; nslabs as usize],
            index: vec![0; nareas as usize],
            live: BTreeMap::new(),
        }
    }

    /// "free-run length to segment end" >= n, recomputed from the bitmap.
    fn fits(&self, slot: u64, n: u64) -> bool {
        let seg_end = (slot / 128 + 1) * 128;
        slot + n <= seg_end && (slot..slot + n).all(|s| !self.used[s as usize])
    }

    fn alloc(&mut self, orig: u64, len: u64, align: u64, min_align: u64, cpu: u64) -> Option<u64> {
        // Step 4: offset and size.
        let offset = orig & min_align & (align | 2047);
        let size = (len + offset).div_ceil(align + 1) * (align + 1);
        let nslots = size.div_ceil(2048);
        // Step 5.
        let mut a_mask = align;
        let mut i_mask = min_align;
        if a_mask == 0 && min_align == 0 && size >= 4096 {
            a_mask = 4095;
        }
        a_mask |= 2047;
        i_mask &= !a_mask;
        let stride = (a_mask.max(i_mask) >> 11) + 1;
        for k in 0..self.nareas {
            let area = ((cpu & (self.nareas - 1)) + k) % self.nareas;
            let used = (0..self.area_nslabs)
                .filter(|s| self.used[(area * self.area_nslabs + s) as usize])
                .count() as u64;
            if nslots > self.area_nslabs - used {
                continue;
            }
            let mut idx = self.index[area as usize];
            let mut checked = 0;
            while checked < self.area_nslabs {
                let slot = area * self.area_nslabs + idx;
                let addr = self.base + slot * 2048;
                if addr & a_mask != 0 || (orig != 0 && addr & i_mask != orig & i_mask) {
                    idx = if idx + 1 >= self.area_nslabs {
                        0
                    } else {
                        idx + 1
                    };
                    checked += 1;
                    continue;
                }
                if self.fits(slot, nslots) {
                    for s in slot..slot + nslots {
                        self.used[s as usize] = true;
                    }
                    let next = idx + nslots;
                    self.index[area as usize] = if next >= self.area_nslabs { 0 } else { next };
                    // Step 7.
                    let pad = offset >> 11;
                    let tlb = self.base + (slot + pad) * 2048 + (offset & 2047);
                    self.live.insert(tlb, (slot, nslots));
                    return Some(tlb);
                }
                idx = if idx + stride >= self.area_nslabs {
                    0
                } else {
                    idx + stride
                };
                checked += stride;
            }
        }
        None
    }

    fn free(&mut self, tlb: u64) {
        if let Some((slot, n)) = self.live.remove(&tlb) {
            for s in slot..slot + n {
                self.used[s as usize] = false;
            }
        }
    }
}

/// xorshift64*: a fixed pseudo-random sequence.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn agrees_with_a_naive_model_of_section_3_2() {
    // The release finds an allocation with the device's min_align_mask, a device property:
    // one value per run.
    for (nslabs, cpus, min_align) in [
        (256u64, 1u32, 0u64),
        (512, 2, 0xFFF),
        (1024, 4, 0x7FF),
        (512, 1, 0x3FFF),
    ] {
        let mut p = pool(nslabs, cpus, true);
        let cfg = p.config().unwrap();
        let mut n = Naive::new(cfg.nslabs, u64::from(cfg.nareas));
        let mut rng = Rng(0x1234_5678_9abc_def1 ^ nslabs);
        let mut live: Vec<u64> = Vec::new();
        for _ in 0..4000 {
            let r = rng.next();
            if r.is_multiple_of(3) && !live.is_empty() {
                let i = (rng.next() % live.len() as u64) as usize;
                let tlb = live.swap_remove(i);
                p.free(tlb, min_align);
                n.free(tlb);
                continue;
            }
            let align = [0u64, 0xFFF, 0x3FFF, 0xFFFF][(r >> 8) as usize % 4];
            let orig = 0x4000_0000 + (rng.next() & 0xF_FFFF);
            let len = 1 + rng.next() % 0x6000;
            let cpu = (rng.next() % 8) as u32;
            let got = p.alloc(orig, len, align, min_align, cpu);
            let want = n.alloc(orig, len, align, min_align, u64::from(cpu));
            assert_eq!(
                (got.ret == 0).then_some(got.slot),
                want,
                "orig {orig:#x} len {len:#x} align {align:#x} min {min_align:#x} cpu {cpu}"
            );
            if let Some(t) = want {
                live.push(t);
                // The preserved bits: the bounce keeps orig's min_align_mask bits inside the
                // allocation alignment.
                let keep = min_align & (align | 0x7FF);
                assert_eq!(t & keep, orig & keep);
            }
        }
    }
}
