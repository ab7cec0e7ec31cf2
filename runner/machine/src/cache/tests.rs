//! Line-model tests through the machine, on an identity domain (DMA address = physical
//! address) with 64-byte lines. Every expected value is worked out by hand from the lowering
//! table of the module docs (KERNEL-FACTS.md §5 and the 7.3 sources it cites).

use dmaconf_platform::{Arch, Dir, DomainType, PgtableBackend, Platform, PlatformFacts};

use crate::{Hazard, Machine, MachineConfig};

fn machine(arch: Arch, coherent: bool) -> Machine {
    Machine::new(MachineConfig {
        facts: PlatformFacts {
            arch,
            domain: DomainType::Identity,
            backend: PgtableBackend::IoPgtableArm,
            pgsize_bitmap: 0x1000,
            aperture_end: u64::MAX,
            force_aperture: false,
            coherent,
            pci: false,
            ..PlatformFacts::default()
        },
        reserved: Vec::new(),
        needs_sync_map: false,
        oas_bits: 48,
        swiotlb: None,
    })
}

fn missed(phys: u64) -> Hazard {
    Hazard::DirtyLineMissed { phys }
}
fn stale(phys: u64) -> Hazard {
    Hazard::StaleCpuLine { phys }
}
fn lost(phys: u64) -> Hazard {
    Hazard::DirtyLineDiscarded { phys }
}

#[test]
fn coherent_and_x86_have_no_lines() {
    for m in [machine(Arch::Arm64, true), machine(Arch::X86, false)] {
        let mut m = m;
        assert!(!m.caches().modelled());
        m.cpu_write(0x1000, &[7; 4]);
        assert_eq!(m.mem_read(0x1000, 4), vec![7; 4]);
        m.cpu_speculate(0x1000, 0x40);
        m.device_write(0x1000, &[9; 4]);
        assert_eq!(m.cpu_read(0x1000, 4), (vec![9; 4], vec![]));
    }
}

/// arm64 to-device: the CPU's bytes are dirty until a clean lands; the clean is queued until
/// the barrier (`dcache_clean_poc_nosync` + `dsb sy`).
#[test]
fn arm64_clean_completes_at_the_barrier() {
    let mut m = machine(Arch::Arm64, false);
    m.cpu_write(0x1000, &[0xAB; 0x100]);
    // Lines 0x1000..0x1100 are dirty; memory still holds zeros.
    assert_eq!(m.caches().lines().len(), 4);
    let r = m.device_read(0x1000, 0x100);
    assert_eq!(r.data, Some(vec![0; 0x100]));
    assert_eq!(r.hazards, vec![missed(0x1000)]);
    m.sync_for_device(0x1000, 0x100, Dir::TO_DEVICE);
    // Four cleans in flight; the device still misses the data.
    assert_eq!(m.caches().pending(), 4);
    let r = m.device_read(0x1040, 0x40);
    assert_eq!(
        (r.data, r.hazards),
        (Some(vec![0; 0x40]), vec![missed(0x1040)])
    );
    m.sync_barrier();
    assert_eq!(m.caches().pending(), 0);
    let r = m.device_read(0x1000, 0x100);
    assert_eq!((r.data, r.hazards), (Some(vec![0xAB; 0x100]), vec![]));
    // The lines stay cached, clean.
    assert_eq!(
        m.caches().lines(),
        vec![
            (0x1000, 0, 0),
            (0x1040, 0, 0),
            (0x1080, 0, 0),
            (0x10C0, 0, 0)
        ]
    );
}

/// arm64 from-device: a line cached before the device writes is stale until invalidated.
#[test]
fn arm64_stale_line_until_invalidated() {
    let mut m = machine(Arch::Arm64, false);
    m.mem_write(0x2000, &[1; 0x80]);
    // The CPU pulls the two lines in by itself (speculation) before the device writes.
    m.cpu_speculate(0x2000, 0x80);
    assert!(m.device_write(0x2000, &[2; 0x80]).hazards.is_empty());
    assert_eq!(
        m.cpu_read(0x2000, 0x80),
        (vec![1; 0x80], vec![stale(0x2000)])
    );
    m.sync_for_cpu(0x2000, 0x80, Dir::FROM_DEVICE);
    // Queued: the old lines are still there until the barrier.
    assert_eq!(m.cpu_read(0x2040, 1), (vec![1], vec![stale(0x2040)]));
    m.sync_barrier();
    assert_eq!(m.cpu_read(0x2000, 0x80), (vec![2; 0x80], vec![]));
    // A to-device sync_for_cpu does nothing on arm64.
    m.device_write(0x2000, &[3; 0x40]);
    m.sync_for_cpu(0x2000, 0x40, Dir::TO_DEVICE);
    m.sync_barrier();
    assert_eq!(m.cpu_read(0x2000, 1), (vec![2], vec![stale(0x2000)]));
}

/// Partial first and last lines: arm64 and arm v7 clean them before invalidating (a dirty
/// neighbour survives), riscv invalidates whole lines (the neighbour's write is lost).
#[test]
fn partial_edge_lines() {
    for (arch, survives) in [(Arch::Arm64, true), (Arch::Arm, true), (Arch::Riscv, false)] {
        let mut m = machine(arch, false);
        // The buffer is [0x1010, 0x10F0): lines 0x1000 and 0x10C0 are partial. The CPU
        // writes a neighbour byte in each of them.
        m.cpu_write(0x1008, &[0x55]);
        m.cpu_write(0x10F8, &[0x66]);
        m.sync_for_cpu(0x1010, 0xE0, Dir::FROM_DEVICE);
        m.sync_barrier();
        let (a, ha) = m.cpu_read(0x1008, 1);
        let (b, hb) = m.cpu_read(0x10F8, 1);
        if survives {
            assert_eq!((a, b), (vec![0x55], vec![0x66]), "{arch:?}");
            assert!(ha.is_empty() && hb.is_empty(), "{arch:?}");
            assert_eq!(m.mem_read(0x1008, 1), vec![0x55]);
        } else {
            assert_eq!((a, b), (vec![0], vec![0]), "{arch:?}");
            assert_eq!((ha, hb), (vec![lost(0x1008)], vec![lost(0x10F8)]));
        }
    }
}

/// An invalidate of a dirty line loses the CPU's write; a new CPU write clears the loss.
#[test]
fn invalidating_a_dirty_line_loses_the_write() {
    let mut m = machine(Arch::Arm64, false);
    m.cpu_write(0x3000, &[9; 0x40]);
    m.sync_for_cpu(0x3000, 0x40, Dir::BIDIRECTIONAL);
    m.sync_barrier();
    assert_eq!(
        m.cpu_read(0x3000, 0x40),
        (vec![0; 0x40], vec![lost(0x3000)])
    );
    m.cpu_write(0x3000, &[4; 0x20]);
    assert_eq!(m.cpu_read(0x3000, 0x40).1, vec![lost(0x3020)]);
    // A device write of lost bytes supersedes the lost CPU write.
    m.device_write(0x3030, &[8; 0x10]);
    assert_eq!(m.cpu_read(0x3020, 0x10).1, vec![lost(0x3020)]);
    m.sync_for_cpu(0x3000, 0x40, Dir::FROM_DEVICE);
    m.sync_barrier();
    assert_eq!(m.cpu_read(0x3030, 0x10), (vec![8; 0x10], vec![]));
}

/// A device write under a dirty line: the later write-back (whole line) lands over it.
#[test]
fn device_write_under_a_dirty_line() {
    let mut m = machine(Arch::Arm64, false);
    // The CPU dirties one byte of the line; the device writes another part of it.
    m.cpu_write(0x4000, &[1]);
    let w = m.device_write(0x4010, &[2; 0x10]);
    assert_eq!(w.hazards, vec![missed(0x4010)]);
    m.sync_for_device(0x4000, 1, Dir::TO_DEVICE);
    m.sync_barrier();
    // The write-back carried the line's old copy of 0x4010..0x4020 over the device's bytes.
    assert_eq!(m.mem_read(0x4010, 0x10), vec![0; 0x10]);
    // A clean still in flight threatens a device write the same way.
    m.cpu_write(0x5000, &[1]);
    m.sync_for_device(0x5000, 0x40, Dir::FROM_DEVICE);
    assert_eq!(m.device_write(0x5020, &[2]).hazards, vec![missed(0x5020)]);
}

/// Loop shapes at the edges: arm64's loops always do one line; riscv's test first; arm v7's
/// clean does one line, its invalidate tests first.
#[test]
fn zero_length_maintenance() {
    // arm64: a zero-length sync_for_cpu at an aligned address invalidates that line.
    let mut m = machine(Arch::Arm64, false);
    m.cpu_write(0x6000, &[1]);
    m.sync_for_cpu(0x6000, 0, Dir::FROM_DEVICE);
    m.sync_barrier();
    assert_eq!(m.cpu_read(0x6000, 1).1, vec![lost(0x6000)]);
    // ... and a zero-length clean cleans it.
    let mut m = machine(Arch::Arm64, false);
    m.cpu_write(0x6000, &[1]);
    m.sync_for_device(0x6000, 0, Dir::TO_DEVICE);
    m.sync_barrier();
    assert_eq!(m.mem_read(0x6000, 1), vec![1]);
    // arm v7: a zero-length invalidate at an aligned address does nothing.
    let mut m = machine(Arch::Arm, false);
    m.cpu_write(0x6000, &[1]);
    m.sync_for_cpu(0x6000, 0, Dir::FROM_DEVICE);
    assert_eq!(m.cpu_read(0x6000, 1), (vec![1], vec![]));
    // riscv: zero length at an unaligned address still reaches its line (start rounded down,
    // below the end); at an aligned one it reaches nothing.
    let mut m = machine(Arch::Riscv, false);
    m.cpu_write(0x6000, &[1]);
    m.sync_for_cpu(0x6000, 0, Dir::FROM_DEVICE);
    assert_eq!(m.cpu_read(0x6000, 1), (vec![1], vec![]));
    m.sync_for_cpu(0x6001, 0, Dir::FROM_DEVICE);
    assert_eq!(m.cpu_read(0x6000, 1), (vec![0], vec![lost(0x6000)]));
}

/// Per-direction lowering on riscv and arm v7 (KERNEL-FACTS §5): riscv cleans for every
/// valid direction and ignores DMA_NONE; arm v7 invalidates for from-device (the CPU's dirty
/// full lines are dropped) and cleans otherwise, DMA_NONE included; neither waits for a
/// barrier.
#[test]
fn riscv_and_arm_for_device_per_direction() {
    for dir in [Dir::TO_DEVICE, Dir::FROM_DEVICE, Dir::BIDIRECTIONAL] {
        let mut m = machine(Arch::Riscv, false);
        m.cpu_write(0x7000, &[5; 0x40]);
        m.sync_for_device(0x7000, 0x40, dir);
        assert_eq!(m.mem_read(0x7000, 0x40), vec![5; 0x40], "{dir:?}");
        assert_eq!(m.caches().pending(), 0);
    }
    let mut m = machine(Arch::Riscv, false);
    m.cpu_write(0x7000, &[5; 0x40]);
    m.sync_for_device(0x7000, 0x40, Dir::NONE);
    assert_eq!(m.mem_read(0x7000, 0x40), vec![0; 0x40]);

    for (dir, kept) in [
        (Dir::TO_DEVICE, true),
        (Dir::BIDIRECTIONAL, true),
        (Dir::NONE, true),
        (Dir::FROM_DEVICE, false),
    ] {
        let mut m = machine(Arch::Arm, false);
        m.cpu_write(0x7000, &[5; 0x40]);
        m.sync_for_device(0x7000, 0x40, dir);
        let want = if kept { vec![5; 0x40] } else { vec![0; 0x40] };
        assert_eq!(m.mem_read(0x7000, 0x40), want, "{dir:?}");
        assert_eq!(m.caches().lines().is_empty(), !kept, "{dir:?}");
    }
    // riscv and arm invalidate for the CPU at once; to-device does nothing.
    for arch in [Arch::Riscv, Arch::Arm] {
        let mut m = machine(arch, false);
        m.cpu_speculate(0x8000, 0x40);
        m.device_write(0x8000, &[6; 0x40]);
        m.sync_for_cpu(0x8000, 0x40, Dir::TO_DEVICE);
        assert_eq!(m.cpu_read(0x8000, 1).1, vec![stale(0x8000)]);
        m.sync_for_cpu(0x8000, 0x40, Dir::FROM_DEVICE);
        assert_eq!(m.cpu_read(0x8000, 0x40), (vec![6; 0x40], vec![]));
    }
}

/// Bounce copies and fills are CPU stores: they stay in dirty lines until cleaned.
#[test]
fn bounce_copies_go_through_the_cache() {
    let mut m = machine(Arch::Arm64, false);
    m.cpu_write(0x9000, &[3; 0x10]);
    m.copy(0xA000, 0x9000, 0x10);
    m.fill(0xA010, 0, 0x30);
    // The copy read the CPU's dirty bytes (not the zeros in memory) and dirtied its target.
    assert_eq!(m.cpu_read(0xA000, 0x10).0, vec![3; 0x10]);
    assert_eq!(m.device_read(0xA000, 0x40).hazards, vec![missed(0xA000)]);
    m.sync_for_device(0xA000, 0x40, Dir::TO_DEVICE);
    m.sync_barrier();
    let r = m.device_read(0xA000, 0x10);
    assert_eq!((r.data, r.hazards), (Some(vec![3; 0x10]), vec![]));
}

#[test]
fn odd_inputs_never_panic() {
    for arch in [Arch::Arm64, Arch::Arm, Arch::Riscv] {
        let mut m = machine(arch, false);
        for (a, l) in [
            (0, 0),
            (u64::MAX, 1),
            (u64::MAX - 63, 64),
            (u64::MAX - 5, 100),
            (1 << 63, 0x1000),
        ] {
            m.cpu_write(a, &[1; 3]);
            m.cpu_speculate(a, l);
            let _ = m.cpu_read(a, l.min(0x1000));
            m.device_write(a, &[2; 3]);
            let _ = m.device_read(a, l.min(0x1000));
            for d in [0, 1, 2, 3, 9] {
                m.sync_for_device(a, l, Dir(d));
                m.sync_for_cpu(a, l, Dir(d));
            }
            m.sync_barrier();
            m.copy(a, a.wrapping_add(7), l.min(0x1000));
            m.fill(a, 1, l.min(0x1000));
        }
    }
}
