//! The platform calls of link, sync, unlink, destroy and free, with their arguments, and the
//! early checks (LINK-*, SYNC-*, UNLINK-*, DESTROY-*, TRYALLOC-01..05, platform variants).

use dmaconf_platform::{
    errno, Arch, Attrs, Dir, DmaApi, DomainType, IovaState, PgtableBackend, PlatformFacts,
    WarnCode, DMA_IOVA_USE_SWIOTLB,
};

use super::fake::{x86_facts, Call, Fake, POOL_BASE};
use super::{alloc, probed};
use crate::Reference;

use Call::*;

const G: u64 = 0x1000;
const FLAG: u64 = DMA_IOVA_USE_SWIOTLB;

/// arm64 with a non-coherent, trusted platform device behind io-pgtable-arm, 32-bit mask.
fn arm64_noncoherent() -> PlatformFacts {
    PlatformFacts {
        arch: Arch::Arm64,
        backend: PgtableBackend::IoPgtableArm,
        coherent: false,
        pci: false,
        cache_line: 128,
        ..x86_facts()
    }
}

/// Coherent device, two links into one state, one sync, one unlink (LINK-05, LINK-07,
/// SYNC-01, UNLINK-01). 3 granules -> 4 -> 0xFFFFC000.
#[test]
fn coherent_multi_link_sequence() {
    let (mut r, mut f) = probed(x86_facts());
    let mut s = alloc(&mut r, &mut f, 0, 3 * G);
    assert_eq!(s.addr, 0xFFFF_C000);

    let ret = r.iova_link(
        &mut f,
        &mut s,
        0x20_0000,
        0,
        G,
        Dir::BIDIRECTIONAL,
        Attrs(0),
    );
    assert_eq!(ret, 0);
    let ret = r.iova_link(
        &mut f,
        &mut s,
        0x30_0000,
        G,
        2 * G,
        Dir::TO_DEVICE,
        Attrs(0),
    );
    assert_eq!(ret, 0);
    // Coherent: CACHE|READ|WRITE = 7 and CACHE|READ = 5; no cache or IOTLB work.
    assert_eq!(
        f.take(),
        vec![
            Map {
                iova: 0xFFFF_C000,
                phys: 0x20_0000,
                len: G,
                prot: 0x7
            },
            Map {
                iova: 0xFFFF_D000,
                phys: 0x30_0000,
                len: 2 * G,
                prot: 0x5
            },
        ]
    );
    assert_eq!(
        s,
        IovaState {
            addr: 0xFFFF_C000,
            size: 3 * G
        }
    );

    assert_eq!(r.iova_sync(&mut f, &s, 0, 3 * G), 0);
    assert_eq!(
        f.take(),
        vec![SyncMap {
            iova: 0xFFFF_C000,
            len: 3 * G
        }]
    );

    r.iova_unlink(&mut f, &s, 0, 3 * G, Dir::BIDIRECTIONAL, Attrs(0));
    assert_eq!(
        f.take(),
        vec![
            Unmap {
                iova: 0xFFFF_C000,
                len: 3 * G
            },
            IotlbSync {
                iova: 0xFFFF_C000,
                len: 3 * G
            },
        ]
    );
    assert_eq!(f.live_ptes(), 0);
    // The IOVA is kept by unlink; free makes no call.
    r.iova_free(&mut f, &s);
    assert!(f.take().is_empty());
}

/// Non-coherent device, unaligned first link plus a second link (LINK-06, SYNC-01, UNLINK-02).
/// try_alloc(0x10000E00, 0x3000): iova_align(0x3E00) = 4 granules at 0xFFFFC000,
/// addr 0xFFFFCE00.
#[test]
fn noncoherent_multi_link_sequence() {
    let (mut r, mut f) = probed(arm64_noncoherent());
    let mut s = alloc(&mut r, &mut f, 0x1000_0E00, 0x3000);
    assert_eq!(s.addr, 0xFFFF_CE00);

    // Link 1: pad 0xE00 -> iova 0xFFFFC000, phys 0x10000000, iova_align(0x1200 + 0xE00).
    let ret = r.iova_link(
        &mut f,
        &mut s,
        0x1000_0E00,
        0,
        0x1200,
        Dir::FROM_DEVICE,
        Attrs(0),
    );
    assert_eq!(ret, 0);
    // Link 2 at offset 0x1200: iova 0xFFFFE000 (aligned), iova_align(0x1E00) = 0x2000.
    let ret = r.iova_link(
        &mut f,
        &mut s,
        0x5000_0000,
        0x1200,
        0x1E00,
        Dir::FROM_DEVICE,
        Attrs(0),
    );
    assert_eq!(ret, 0);
    assert_eq!(
        f.take(),
        vec![
            ForDevice {
                phys: 0x1000_0000,
                len: 0x2000,
                dir: 2
            },
            Map {
                iova: 0xFFFF_C000,
                phys: 0x1000_0000,
                len: 0x2000,
                prot: 0x2
            },
            ForDevice {
                phys: 0x5000_0000,
                len: 0x2000,
                dir: 2
            },
            Map {
                iova: 0xFFFF_E000,
                phys: 0x5000_0000,
                len: 0x2000,
                prot: 0x2
            },
        ]
    );

    // Sync: barrier, then iotlb_sync_map(0xFFFFC000, iova_align(0x3000 + 0xE00)).
    assert_eq!(r.iova_sync(&mut f, &s, 0, 0x3000), 0);
    assert_eq!(
        f.take(),
        vec![
            Barrier,
            SyncMap {
                iova: 0xFFFF_C000,
                len: 0x4000
            }
        ]
    );

    // Unlink: pieces 0x200 @0xFFFFCE00, 0x1000 @0xFFFFD000, 0x1000 @0xFFFFE000,
    // 0xE00 @0xFFFFF000; exact-byte for_cpu, one barrier, then unmap + iotlb_sync.
    r.iova_unlink(&mut f, &s, 0, 0x3000, Dir::FROM_DEVICE, Attrs(0));
    assert_eq!(
        f.take(),
        vec![
            IovaToPhys(0xFFFF_CE00),
            ForCpu {
                phys: 0x1000_0E00,
                len: 0x200,
                dir: 2
            },
            IsBounce(0x1000_0E00),
            IovaToPhys(0xFFFF_D000),
            ForCpu {
                phys: 0x1000_1000,
                len: 0x1000,
                dir: 2
            },
            IsBounce(0x1000_1000),
            IovaToPhys(0xFFFF_E000),
            ForCpu {
                phys: 0x5000_0000,
                len: 0x1000,
                dir: 2
            },
            IsBounce(0x5000_0000),
            IovaToPhys(0xFFFF_F000),
            ForCpu {
                phys: 0x5000_1000,
                len: 0xE00,
                dir: 2
            },
            IsBounce(0x5000_1000),
            Barrier,
            Unmap {
                iova: 0xFFFF_C000,
                len: 0x4000
            },
            IotlbSync {
                iova: 0xFFFF_C000,
                len: 0x4000
            },
        ]
    );
    assert_eq!(f.live_ptes(), 0);
}

/// SKIP_CPU_SYNC on a non-coherent device: no cache maintenance in link, and unlink takes only
/// the fast part (LINK-06, UNLINK-01).
#[test]
fn skip_cpu_sync_skips_cache_work() {
    let (mut r, mut f) = probed(arm64_noncoherent());
    let mut s = alloc(&mut r, &mut f, 0, G);
    let skip = Attrs::SKIP_CPU_SYNC;
    assert_eq!(
        r.iova_link(&mut f, &mut s, 0x4000_0000, 0, G, Dir::TO_DEVICE, skip),
        0
    );
    r.iova_unlink(&mut f, &s, 0, G, Dir::TO_DEVICE, skip);
    assert_eq!(
        f.take(),
        vec![
            Map {
                iova: 0xFFFF_F000,
                phys: 0x4000_0000,
                len: G,
                prot: 0x1
            },
            Unmap {
                iova: 0xFFFF_F000,
                len: G
            },
            IotlbSync {
                iova: 0xFFFF_F000,
                len: G
            },
        ]
    );
}

/// Untrusted PCI device, NVMe-like min_align_mask 0xFFF: head/middle/tail (LINK-09, STATE-04,
/// UNLINK-05). try_alloc(0x10000E00, 0x3000) -> 0xFFFFC000 + 0xE00.
/// Head: 0x200 bytes into a slot keeping offset 0xE00 (fake pool: 0x80000E00), pre-padding
/// 0xE00 zeroed, map of the bounce granule. Middle: 0x2000 bytes direct. Tail: 0xE00 bytes
/// into the next granule-aligned slot (0x80001000), post-padding 0x200 zeroed.
#[test]
fn swiotlb_head_middle_tail() {
    let mut facts = x86_facts();
    facts.untrusted = true;
    facts.min_align_mask = 0xFFF;
    let (mut r, mut f) = probed(facts);
    let mut s = alloc(&mut r, &mut f, 0x1000_0E00, 0x3000);
    assert_eq!(s.addr, 0xFFFF_CE00);

    let ret = r.iova_link(
        &mut f,
        &mut s,
        0x1000_0E00,
        0,
        0x3000,
        Dir::FROM_DEVICE,
        Attrs(0),
    );
    assert_eq!(ret, 0);
    let b = POOL_BASE;
    assert_eq!(
        f.take(),
        vec![
            BounceAlloc {
                orig: 0x1000_0E00,
                len: 0x200,
                align: 0xFFF,
                min_align: 0xFFF
            },
            Copy {
                dst: b + 0xE00,
                src: 0x1000_0E00,
                len: 0x200
            },
            Fill {
                dst: b,
                byte: 0,
                len: 0xE00
            },
            Map {
                iova: 0xFFFF_C000,
                phys: b,
                len: G,
                prot: 0x6
            },
            Map {
                iova: 0xFFFF_D000,
                phys: 0x1000_1000,
                len: 0x2000,
                prot: 0x6
            },
            BounceAlloc {
                orig: 0x1000_3000,
                len: 0xE00,
                align: 0xFFF,
                min_align: 0xFFF
            },
            Copy {
                dst: b + 0x1000,
                src: 0x1000_3000,
                len: 0xE00
            },
            Fill {
                dst: b + 0x1E00,
                byte: 0,
                len: 0x200
            },
            Map {
                iova: 0xFFFF_F000,
                phys: b + 0x1000,
                len: G,
                prot: 0x6
            },
        ]
    );
    assert_eq!(
        s,
        IovaState {
            addr: 0xFFFF_CE00,
            size: 0x3000 | FLAG
        }
    );

    // Sync is IOTLB-only, even for a bounced state (SYNC-02).
    assert_eq!(r.iova_sync(&mut f, &s, 0, 0x3000), 0);
    assert_eq!(
        f.take(),
        vec![SyncMap {
            iova: 0xFFFF_C000,
            len: 0x4000
        }]
    );

    r.iova_unlink(&mut f, &s, 0, 0x3000, Dir::FROM_DEVICE, Attrs(0));
    assert_eq!(
        f.take(),
        vec![
            IovaToPhys(0xFFFF_CE00),
            IsBounce(b + 0xE00),
            BounceOrig(b + 0xE00),
            Copy {
                dst: 0x1000_0E00,
                src: b + 0xE00,
                len: 0x200
            },
            BounceFree {
                slot: b + 0xE00,
                len: 0x200
            },
            IovaToPhys(0xFFFF_D000),
            IsBounce(0x1000_1000),
            IovaToPhys(0xFFFF_E000),
            IsBounce(0x1000_2000),
            IovaToPhys(0xFFFF_F000),
            IsBounce(b + 0x1000),
            BounceOrig(b + 0x1000),
            Copy {
                dst: 0x1000_3000,
                src: b + 0x1000,
                len: 0xE00
            },
            BounceFree {
                slot: b + 0x1000,
                len: 0xE00
            },
            Unmap {
                iova: 0xFFFF_C000,
                len: 0x4000
            },
            IotlbSync {
                iova: 0xFFFF_C000,
                len: 0x4000
            },
        ]
    );
    assert_eq!(f.live_ptes(), 0);
    assert_eq!(f.live_bounces(), 0);
    // The flag is sticky (STATE-04): the state is not changed by unlink.
    assert_eq!(s.size, 0x3000 | FLAG);
}

/// §1.3 sharp edge: a kmalloc bounce (arm64, non-coherent, from-device, 64 bytes) with
/// min_align_mask 0 gets a granule-aligned slot, so `bounce - pad` is misaligned and the map
/// fails; the slot is copied back (barrier first: non-coherent) and released, the flag is not
/// set. try_alloc(0x10000100, 0x40): one granule at 0xFFFFF000, addr 0xFFFFF100.
#[test]
fn head_bounce_without_min_align_fails_in_map() {
    let mut facts = arm64_noncoherent();
    facts.kmalloc_bounce = true;
    let (mut r, mut f) = probed(facts);
    let mut s = alloc(&mut r, &mut f, 0x1000_0100, 0x40);
    assert_eq!(s.addr, 0xFFFF_F100);
    let ret = r.iova_link(
        &mut f,
        &mut s,
        0x1000_0100,
        0,
        0x40,
        Dir::FROM_DEVICE,
        Attrs(0),
    );
    assert_eq!(ret, -errno::EINVAL);
    let b = POOL_BASE;
    assert_eq!(
        f.take(),
        vec![
            BounceAlloc {
                orig: 0x1000_0100,
                len: 0x40,
                align: 0xFFF,
                min_align: 0
            },
            Copy {
                dst: b,
                src: 0x1000_0100,
                len: 0x40
            },
            ForDevice {
                phys: b - 0x100,
                len: G,
                dir: 2
            },
            Map {
                iova: 0xFFFF_F000,
                phys: b - 0x100,
                len: G,
                prot: 0x2
            },
            IsBounce(b),
            BounceOrig(b),
            Barrier,
            Copy {
                dst: 0x1000_0100,
                src: b,
                len: 0x40
            },
            BounceFree { slot: b, len: 0x40 },
        ]
    );
    assert_eq!(s.size, 0x40);
    // A to-device link of the same buffer does not bounce (kmalloc buffers are safe for it).
    let ret = r.iova_link(
        &mut f,
        &mut s,
        0x1000_0100,
        0,
        0x40,
        Dir::TO_DEVICE,
        Attrs(0),
    );
    assert_eq!(ret, 0);
    assert_eq!(
        f.take(),
        vec![
            ForDevice {
                phys: 0x1000_0000,
                len: G,
                dir: 1
            },
            Map {
                iova: 0xFFFF_F000,
                phys: 0x1000_0000,
                len: G,
                prot: 0x1
            },
        ]
    );
}

/// No bounce pool: a needed bounce fails with -ENOMEM before any platform call.
#[test]
fn inactive_pool_is_enomem() {
    let mut facts = x86_facts();
    facts.untrusted = true;
    facts.swiotlb = false;
    let (mut r, mut f) = probed(facts);
    let mut s = alloc(&mut r, &mut f, 0x10, 0x100);
    let ret = r.iova_link(&mut f, &mut s, 0x10, 0, 0x100, Dir::TO_DEVICE, Attrs(0));
    assert_eq!(ret, -errno::ENOMEM);
    assert!(f.take().is_empty());
    assert_eq!(s.size, 0x100);
}

/// UNLINK-03, UNLINK-04: unlinking a never-linked range on a non-coherent device: the slow path
/// meets an untranslated granule, WARNs and stops (no barrier); the unmap comes back short,
/// WARNs; io-pgtable gathered nothing, so no iotlb_sync. try_alloc(0, 0x2000) -> 0xFFFFE000.
#[test]
fn unlink_never_linked_noncoherent() {
    let (mut r, mut f) = probed(arm64_noncoherent());
    let s = alloc(&mut r, &mut f, 0, 2 * G);
    assert_eq!(s.addr, 0xFFFF_E000);
    r.iova_unlink(&mut f, &s, 0, 2 * G, Dir::TO_DEVICE, Attrs(0));
    assert_eq!(
        f.take(),
        vec![
            IovaToPhys(0xFFFF_E000),
            Warn(WarnCode::UNLINK_UNTRANSLATED),
            Unmap {
                iova: 0xFFFF_E000,
                len: 2 * G
            },
            Warn(WarnCode::UNLINK_SHORT_UNMAP),
        ]
    );
}

/// Half-linked: the slow path handles the first granule, aborts on the second (no barrier
/// after an abort), the short unmap WARNs and the gather of the one granule is synced.
#[test]
fn unlink_half_linked_noncoherent() {
    let (mut r, mut f) = probed(arm64_noncoherent());
    let mut s = alloc(&mut r, &mut f, 0, 2 * G);
    assert_eq!(
        r.iova_link(&mut f, &mut s, 0x4000_0000, 0, G, Dir::TO_DEVICE, Attrs(0)),
        0
    );
    f.take();
    r.iova_unlink(&mut f, &s, 0, 2 * G, Dir::TO_DEVICE, Attrs(0));
    assert_eq!(
        f.take(),
        vec![
            IovaToPhys(0xFFFF_E000),
            ForCpu {
                phys: 0x4000_0000,
                len: G,
                dir: 1
            },
            IsBounce(0x4000_0000),
            IovaToPhys(0xFFFF_F000),
            Warn(WarnCode::UNLINK_UNTRANSLATED),
            Unmap {
                iova: 0xFFFF_E000,
                len: 2 * G
            },
            Warn(WarnCode::UNLINK_SHORT_UNMAP),
            IotlbSync {
                iova: 0xFFFF_E000,
                len: G
            },
        ]
    );
}

/// Unlink on a zeroed state (misuse: the caller did not check dma_use_iova) on iommupt: the
/// empty gather at IOVA 0 wraps to [0, ~0] and is synced, as in Linux.
#[test]
fn unlink_zeroed_state_iommupt() {
    let (mut r, mut f) = probed(x86_facts());
    let s = IovaState::default();
    r.iova_unlink(&mut f, &s, 0, G, Dir::TO_DEVICE, Attrs(0));
    assert_eq!(
        f.take(),
        vec![
            Unmap { iova: 0, len: G },
            Warn(WarnCode::UNLINK_SHORT_UNMAP),
            IotlbSync {
                iova: 0,
                len: u64::MAX
            },
        ]
    );
}

/// DESTROY-01/02: destroy = unlink(0, mapped_len) + free; with mapped_len 0 only the free.
/// The free of 2 granules goes to bucket 1 of CPU 0.
#[test]
fn destroy_unlinks_then_frees() {
    let (mut r, mut f) = probed(x86_facts());
    let mut s = alloc(&mut r, &mut f, 0, 2 * G);
    assert_eq!(
        r.iova_link(
            &mut f,
            &mut s,
            0x4000_0000,
            0,
            2 * G,
            Dir::TO_DEVICE,
            Attrs(0)
        ),
        0
    );
    f.take();
    r.iova_destroy(&mut f, &s, 2 * G, Dir::TO_DEVICE, Attrs(0));
    assert_eq!(
        f.take(),
        vec![
            Unmap {
                iova: 0xFFFF_E000,
                len: 2 * G
            },
            IotlbSync {
                iova: 0xFFFF_E000,
                len: 2 * G
            },
        ]
    );
    let (loaded, _) = r.iova_domain().unwrap().rcaches().cpu_magazines(0, 1);
    assert_eq!(loaded, vec![0xF_FFFE]);

    let t = alloc(&mut r, &mut f, 0, 2 * G);
    assert_eq!(t.addr, 0xFFFF_E000);
    r.iova_destroy(&mut f, &t, 0, Dir::TO_DEVICE, Attrs(0));
    assert!(f.take().is_empty());
}

/// LINK-01: unaligned phys at offset > 0: WARN, -EIO, no other call, state unchanged.
/// The model logs the WARN every time (Linux's WARN_ON_ONCE prints once per boot).
#[test]
fn link_unaligned_at_offset_is_eio() {
    let (mut r, mut f) = probed(x86_facts());
    let mut s = alloc(&mut r, &mut f, 0, 4 * G);
    let before = s;
    let ret = r.iova_link(&mut f, &mut s, 0x1000_0E00, G, G, Dir::TO_DEVICE, Attrs(0));
    assert_eq!(ret, -errno::EIO);
    assert_eq!(f.take(), vec![Warn(WarnCode::LINK_UNALIGNED_AT_OFFSET)]);
    let ret = r.iova_link(&mut f, &mut s, 0x1000_0E00, G, G, Dir::TO_DEVICE, Attrs(0));
    assert_eq!(ret, -errno::EIO);
    assert_eq!(f.take(), vec![Warn(WarnCode::LINK_UNALIGNED_AT_OFFSET)]);
    assert_eq!(s, before);
}

/// LINK-02: REQUIRE_COHERENT on a state that bounced: WARN, -EOPNOTSUPP.
#[test]
fn link_require_coherent_after_bounce() {
    let (mut r, mut f) = probed(x86_facts());
    let mut s = alloc(&mut r, &mut f, 0, 4 * G);
    s.size |= FLAG;
    let before = s;
    let attrs = Attrs::REQUIRE_COHERENT;
    let ret = r.iova_link(&mut f, &mut s, 0x4000_0000, 0, G, Dir::TO_DEVICE, attrs);
    assert_eq!(ret, -errno::EOPNOTSUPP);
    assert_eq!(f.take(), vec![Warn(WarnCode::LINK_COHERENT_AFTER_BOUNCE)]);
    assert_eq!(s, before);
}

/// LINK-03: REQUIRE_COHERENT on a non-coherent device: -EOPNOTSUPP without a WARN.
#[test]
fn link_require_coherent_noncoherent() {
    let (mut r, mut f) = probed(arm64_noncoherent());
    let mut s = alloc(&mut r, &mut f, 0, G);
    let attrs = Attrs::REQUIRE_COHERENT;
    let ret = r.iova_link(&mut f, &mut s, 0x4000_0000, 0, G, Dir::TO_DEVICE, attrs);
    assert_eq!(ret, -errno::EOPNOTSUPP);
    assert!(f.take().is_empty());
}

/// LINK-04: a bounce would be needed (untrusted, unaligned) with MMIO or REQUIRE_COHERENT:
/// -EPERM, no call at all.
#[test]
fn link_bounce_with_mmio_or_require_coherent_is_eperm() {
    let mut facts = x86_facts();
    facts.untrusted = true;
    let (mut r, mut f) = probed(facts);
    let mut s = alloc(&mut r, &mut f, 0x10_0010, 0x100);
    let before = s;
    for attrs in [
        Attrs::MMIO,
        Attrs::REQUIRE_COHERENT,
        Attrs::MMIO | Attrs::SKIP_CPU_SYNC,
    ] {
        let ret = r.iova_link(
            &mut f,
            &mut s,
            0x10_0010,
            0,
            0x100,
            Dir::BIDIRECTIONAL,
            attrs,
        );
        assert_eq!(ret, -errno::EPERM);
    }
    assert!(f.take().is_empty());
    assert_eq!(s, before);
    // Aligned phys and size need no bounce: MMIO maps directly with prot MMIO|R|W = 0x13.
    let mut t = alloc(&mut r, &mut f, 0, G);
    let ret = r.iova_link(
        &mut f,
        &mut t,
        0x1_0000_0000,
        0,
        G,
        Dir::BIDIRECTIONAL,
        Attrs::MMIO,
    );
    assert_eq!(ret, 0);
    assert_eq!(
        f.take(),
        vec![Map {
            iova: t.addr,
            phys: 0x1_0000_0000,
            len: G,
            prot: 0x13
        }]
    );
}

/// PROT-02: DMA_NONE maps with prot 0, which the page table refuses; on a non-coherent device
/// the for_device cache op has already been done (LINK-08: the state is unchanged).
#[test]
fn link_dma_none_is_refused_by_the_page_table() {
    let (mut r, mut f) = probed(arm64_noncoherent());
    let mut s = alloc(&mut r, &mut f, 0, G);
    let ret = r.iova_link(&mut f, &mut s, 0x4000_0000, 0, G, Dir::NONE, Attrs(0));
    assert_eq!(ret, -errno::EINVAL);
    assert_eq!(
        f.take(),
        vec![
            ForDevice {
                phys: 0x4000_0000,
                len: G,
                dir: 3
            },
            Map {
                iova: 0xFFFF_F000,
                phys: 0x4000_0000,
                len: G,
                prot: 0
            },
        ]
    );
    assert_eq!(s.size, G);
}

/// SYNC-01 returns iotlb_sync_map's result.
#[test]
fn sync_returns_iotlb_sync_map_result() {
    let (mut r, mut f) = probed(x86_facts());
    let s = alloc(&mut r, &mut f, 0, G);
    f.sync_map_ret = -errno::ENOMEM;
    assert_eq!(r.iova_sync(&mut f, &s, 0x10, 0x20), -errno::ENOMEM);
    assert_eq!(
        f.take(),
        vec![SyncMap {
            iova: 0xFFFF_F000,
            len: G
        }]
    );
}

/// TRYALLOC-01, -04, -05: the state is zeroed first; size 0 and bit 63 WARN (every time) and
/// fail.
#[test]
fn try_alloc_size_checks() {
    let (mut r, mut f) = probed(x86_facts());
    let mut s = IovaState { addr: 1, size: 2 };
    assert!(!r.iova_try_alloc(&mut f, &mut s, 0, 0));
    assert_eq!(s, IovaState::default());
    assert_eq!(f.take(), vec![Warn(WarnCode::TRY_ALLOC_ZERO_SIZE)]);
    assert!(!r.iova_try_alloc(&mut f, &mut s, 0, u64::MAX));
    assert!(!r.iova_try_alloc(&mut f, &mut s, 0, 1 << 63));
    assert_eq!(
        f.take(),
        vec![
            Warn(WarnCode::TRY_ALLOC_SIZE_FLAG_BIT),
            Warn(WarnCode::TRY_ALLOC_SIZE_FLAG_BIT)
        ]
    );
    assert!(!r.iova_try_alloc(&mut f, &mut s, 0, 0));
    assert_eq!(f.take(), vec![Warn(WarnCode::TRY_ALLOC_ZERO_SIZE)]);
    assert_eq!(s, IovaState::default());
}

/// TRYALLOC-03 and the stubs of a !CONFIG_IOMMU_DMA kernel: the state is left alone, link and
/// sync are -EOPNOTSUPP, the rest do nothing.
#[test]
fn stubs_without_iommu_dma() {
    let mut facts = x86_facts();
    facts.arch = Arch::Riscv;
    facts.iommu_dma_config = false;
    let (mut r, mut f) = probed(facts);
    let mut s = IovaState {
        addr: 0x1234,
        size: 0x5678,
    };
    assert!(!r.iova_try_alloc(&mut f, &mut s, 0, G));
    assert_eq!(
        s,
        IovaState {
            addr: 0x1234,
            size: 0x5678
        }
    );
    assert_eq!(
        r.iova_link(&mut f, &mut s, 0, 0, G, Dir::TO_DEVICE, Attrs(0)),
        -errno::EOPNOTSUPP
    );
    assert_eq!(r.iova_sync(&mut f, &s, 0, G), -errno::EOPNOTSUPP);
    r.iova_unlink(&mut f, &s, 0, G, Dir::TO_DEVICE, Attrs(0));
    r.iova_destroy(&mut f, &s, G, Dir::TO_DEVICE, Attrs(0));
    r.iova_free(&mut f, &s);
    assert!(f.take().is_empty());
    assert!(r.iova_domain().is_none());
    // STATE-02: the stub dma_use_iova is false whatever the state holds; dma_iova_size (one
    // inline for both builds) still reads it.
    assert!(!r.use_iova(&s));
    assert_eq!(r.iova_size(&s), 0x5678);
}

/// TRYALLOC-02: dma-direct and identity domains: the state is zeroed and try_alloc is false.
#[test]
fn not_on_iommu_dma() {
    for domain in [DomainType::None, DomainType::Identity] {
        let mut facts = x86_facts();
        facts.domain = domain;
        let (mut r, mut f) = probed(facts);
        let mut s = IovaState {
            addr: 0x1234,
            size: 0x5678,
        };
        assert!(!r.iova_try_alloc(&mut f, &mut s, 0, G));
        assert_eq!(s, IovaState::default());
        assert_eq!(
            r.iova_link(&mut f, &mut s, 0, 0, G, Dir::TO_DEVICE, Attrs(0)),
            -errno::EOPNOTSUPP
        );
        r.iova_destroy(&mut f, &s, G, Dir::TO_DEVICE, Attrs(0));
        assert!(f.take().is_empty());
    }
    // A DMA_FQ domain is iommu-dma too.
    let mut facts = x86_facts();
    facts.domain = DomainType::DmaFq;
    let (mut r, mut f) = probed(facts);
    assert_eq!(alloc(&mut r, &mut f, 0, G).addr, 0xFFFF_F000);
}

/// A domain without page sizes cannot be set up: probe fails, the device stays off iommu-dma.
#[test]
fn probe_without_page_sizes_fails() {
    let mut facts = x86_facts();
    facts.pgsize_bitmap = 0;
    let mut f = Fake::new(facts);
    let mut r = Reference::new();
    assert_eq!(r.probe(&mut f), -errno::EINVAL);
    let mut s = IovaState { addr: 1, size: 1 };
    assert!(!r.iova_try_alloc(&mut f, &mut s, 0, G));
    assert_eq!(s, IovaState::default());
}

/// A call before probe probes first.
#[test]
fn first_call_probes() {
    let mut f = Fake::new(x86_facts());
    let mut r = Reference::new();
    let mut s = IovaState::default();
    assert!(r.iova_try_alloc(&mut f, &mut s, 0, G));
    assert_eq!(s.addr, 0xFFFF_F000);
}
