//! One test per code: a call sequence that breaks the rule gets the code, and the same sequence
//! done right gets none. Addresses are made up; only their relations matter.

use super::*;

const G: u64 = 0x1000;
const A: u64 = 0x4000_0000; // a RAM buffer
const BAR: u64 = 0x9000_0000; // a peer's BAR

fn facts(coherent: bool) -> Facts {
    Facts {
        granule: G,
        coherent,
        cache_line: 64,
        not_ram: vec![(BAR, BAR + 0x10000)],
    }
}

fn ids(f: &Findings) -> Vec<String> {
    f.iter().map(|c| c.id()).collect()
}

/// Runs observations; returns the findings of each and of the end.
fn run(coherent: bool, obs: &[Observation]) -> (Vec<Findings>, Findings) {
    let mut c = Checker::new(facts(coherent));
    let steps = obs.iter().map(|o| c.observe(o, &[])).collect();
    (steps, c.finish())
}

fn all(coherent: bool, obs: &[Observation]) -> BTreeSet<Code> {
    let (steps, end) = run(coherent, obs);
    steps.into_iter().flatten().chain(end).collect()
}

fn alloc(state: &str, size: u64) -> Observation {
    Observation::TryAlloc {
        state: state.into(),
        phys: 0,
        size,
        ret: true,
        after: (0xFFFF_0000, size),
    }
}

fn refused(state: &str) -> Observation {
    Observation::TryAlloc {
        state: state.into(),
        phys: 0,
        size: G,
        ret: false,
        after: (0, 0),
    }
}

fn link(state: &str, phys: u64, offset: u64, size: u64) -> Observation {
    link_with(state, phys, offset, size, Dir::BIDIRECTIONAL, Attrs(0))
}

fn link_with(
    state: &str,
    phys: u64,
    offset: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
) -> Observation {
    Observation::Link {
        state: state.into(),
        phys,
        offset,
        size,
        dir,
        attrs,
        ret: 0,
    }
}

fn sync(state: &str, offset: u64, size: u64) -> Observation {
    Observation::Sync {
        state: state.into(),
        offset,
        size,
        ret: 0,
    }
}

fn unlink(state: &str, offset: u64, size: u64) -> Observation {
    unlink_with(state, offset, size, Dir::BIDIRECTIONAL, Attrs(0))
}

fn unlink_with(state: &str, offset: u64, size: u64, dir: Dir, attrs: Attrs) -> Observation {
    Observation::Unlink {
        state: state.into(),
        offset,
        size,
        dir,
        attrs,
    }
}

fn destroy(state: &str, mapped_len: u64) -> Observation {
    Observation::Destroy {
        state: state.into(),
        mapped_len,
        dir: Dir::BIDIRECTIONAL,
        attrs: Attrs(0),
    }
}

fn free(state: &str) -> Observation {
    Observation::Free {
        state: state.into(),
    }
}

fn device(addr: u64, len: u64) -> Observation {
    Observation::DeviceAccess { addr, len }
}

fn map(phys: u64, size: u64, ret: u64) -> Observation {
    Observation::Map {
        entry: Entry::Phys,
        phys,
        size,
        dir: Dir::FROM_DEVICE,
        attrs: Attrs(0),
        ret,
    }
}

fn unmap(entry: Entry, addr: u64, size: u64) -> Observation {
    Observation::Unmap {
        entry,
        addr,
        size,
        dir: Dir::FROM_DEVICE,
    }
}

/// The good life of one state: alloc, link, sync, device access, unlink, free.
fn conforming() -> Vec<Observation> {
    vec![
        alloc("s", 0x2000),
        link("s", A, 0, 0x1000),
        link("s", A + 0x10000, 0x1000, 0x1000),
        sync("s", 0, 0x2000),
        device(0xFFFF_0000, 0x2000),
        unlink("s", 0, 0x1000),
        unlink("s", 0x1000, 0x1000),
        free("s"),
    ]
}

#[test]
fn codes_are_numbered_in_catalogue_order() {
    assert_eq!(Code::NoReservation.id(), "CHECK-01");
    assert_eq!(Code::LeakedStreamingMapping.id(), "CHECK-25");
    let names: BTreeSet<&str> = Code::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names.len(), Code::ALL.len());
}

#[test]
fn conforming_sequence_has_no_finding_coherent_or_not() {
    assert!(all(true, &conforming()).is_empty());
    assert!(all(false, &conforming()).is_empty());
}

#[test]
fn check_01_no_reservation() {
    let (s, _) = run(true, &[refused("s"), link("s", A, 0, G), sync("s", 0, G)]);
    assert_eq!(ids(&s[1]), ["CHECK-01"]);
    assert_eq!(ids(&s[2]), ["CHECK-01"]);
    let (s, _) = run(true, &[free("never")]);
    assert_eq!(ids(&s[0]), ["CHECK-01"]);
}

#[test]
fn check_02_stub_state_not_zeroed() {
    let mut c = Checker::new(facts(true));
    c.observe(&Observation::StateSet { state: "s".into() }, &[]);
    c.observe(&refused("s"), &[]);
    let f = c.observe(
        &Observation::UseIova {
            state: "s".into(),
            ret: true,
        },
        &[],
    );
    assert_eq!(ids(&f), ["CHECK-02"]);
    let f = c.observe(
        &Observation::UseIova {
            state: "s".into(),
            ret: false,
        },
        &[],
    );
    assert!(f.is_empty());
    let f = c.observe(
        &Observation::IovaSize {
            state: "s".into(),
            ret: 0x2000,
        },
        &[],
    );
    assert_eq!(ids(&f), ["CHECK-02"]);
}

#[test]
fn check_03_and_04_use_after_free_and_double_free() {
    let (s, _) = run(
        true,
        &[alloc("s", G), free("s"), link("s", A, 0, G), free("s")],
    );
    assert!(s[1].is_empty());
    assert!(s[2].contains(&Code::UseAfterFree));
    assert_eq!(ids(&s[3]), ["CHECK-04"]);
    let (s, _) = run(true, &[alloc("s", G), destroy("s", 0), destroy("s", 0)]);
    assert!(s[1].is_empty());
    assert_eq!(ids(&s[2]), ["CHECK-04"]);
}

#[test]
fn check_05_invalid_size() {
    for size in [0, 1 << 63, u64::MAX] {
        let (s, _) = run(
            true,
            &[Observation::TryAlloc {
                state: "s".into(),
                phys: 0,
                size,
                ret: false,
                after: (0, 0),
            }],
        );
        assert_eq!(ids(&s[0]), ["CHECK-05"], "size {size:#x}");
    }
    assert!(run(true, &[alloc("s", 1), free("s")])
        .0
        .iter()
        .all(|f| f.is_empty()));
}

#[test]
fn check_06_out_of_bounds() {
    let (s, _) = run(true, &[alloc("s", 0x2000), link("s", A, 0x1000, 0x2000)]);
    assert!(s[1].contains(&Code::LinkOutOfBounds));
    let (s, _) = run(
        true,
        &[alloc("s", 0x2000), link("s", A, u64::MAX - 0xFFF, 0x2000)],
    );
    assert!(s[1].contains(&Code::LinkOutOfBounds));
    let (s, _) = run(true, &[alloc("s", 0x2000), link("s", A, 0x1000, 0x1000)]);
    assert!(s[1].is_empty());
}

#[test]
fn check_07_overlap() {
    let (s, _) = run(
        true,
        &[
            alloc("s", 0x2000),
            link("s", A, 0, 0x2000),
            link("s", A, 0x1000, 0x1000),
        ],
    );
    assert!(s[2].contains(&Code::LinkOverlap));
    // After an unlink the same range may be linked again.
    let (s, _) = run(
        true,
        &[
            alloc("s", 0x2000),
            link("s", A, 0, 0x2000),
            unlink("s", 0, 0x2000),
            link("s", A, 0, 0x2000),
        ],
    );
    assert!(s[3].is_empty());
}

#[test]
fn check_08_misaligned() {
    // A later link at an unaligned offset.
    let (s, _) = run(
        true,
        &[
            alloc("s", 0x3000),
            link("s", A, 0, 0x1000),
            link("s", A + 0x5000, 0x1800, 0x1000),
        ],
    );
    assert_eq!(ids(&s[2]), ["CHECK-08"]);
    // An unaligned phys at a non-zero offset (LINK-01).
    let (s, _) = run(
        true,
        &[alloc("s", 0x3000), link("s", A + 0x200, 0x1000, 0x1000)],
    );
    assert_eq!(ids(&s[1]), ["CHECK-08"]);
    // A first link whose phys offset differs from try_alloc's (state.addr is aligned here).
    let (s, _) = run(true, &[alloc("s", 0x3000), link("s", A + 0x200, 0, 0x1000)]);
    assert_eq!(ids(&s[1]), ["CHECK-08"]);
    // A link that ends mid-granule followed by another one.
    let (s, _) = run(
        true,
        &[
            alloc("s", 0x3000),
            link("s", A, 0, 0x1800),
            link("s", A + 0x5000, 0x2000, 0x1000),
        ],
    );
    assert_eq!(ids(&s[2]), ["CHECK-08"]);
    // The last link may end anywhere.
    let (s, _) = run(
        true,
        &[
            alloc("s", 0x3000),
            link("s", A, 0, 0x1000),
            link("s", A + 0x5000, 0x1000, 0x1800),
        ],
    );
    assert!(s[2].is_empty());
}

#[test]
fn check_09_invalid_direction() {
    for d in [Dir::NONE, Dir(7)] {
        let (s, _) = run(true, &[alloc("s", G), link_with("s", A, 0, G, d, Attrs(0))]);
        assert!(s[1].contains(&Code::InvalidDirection));
        let (s, _) = run(
            true,
            &[Observation::SyncSingle {
                addr: 0,
                size: 1,
                dir: d,
            }],
        );
        assert!(s[0].contains(&Code::InvalidDirection));
    }
}

#[test]
fn check_10_device_access_before_sync() {
    let (s, _) = run(
        true,
        &[
            alloc("s", 0x2000),
            link("s", A, 0, 0x2000),
            device(0xFFFF_1000, 0x10),
        ],
    );
    assert_eq!(ids(&s[2]), ["CHECK-10"]);
    // A sync over the first granule only leaves the second unsynced.
    let (s, _) = run(
        true,
        &[
            alloc("s", 0x2000),
            link("s", A, 0, 0x2000),
            sync("s", 0, 0x1000),
            device(0xFFFF_0000, 0x1000),
            device(0xFFFF_1000, 0x1000),
        ],
    );
    assert!(s[3].is_empty());
    assert_eq!(ids(&s[4]), ["CHECK-10"]);
    // An access outside every link is not this rule's business.
    let (s, _) = run(
        true,
        &[
            alloc("s", 0x2000),
            link("s", A, 0, 0x1000),
            device(0xFFFF_1000, 0x10),
        ],
    );
    assert!(s[2].is_empty());
}

#[test]
fn check_11_unlink_not_linked() {
    let (s, _) = run(
        true,
        &[
            alloc("s", 0x2000),
            link("s", A, 0, 0x1000),
            unlink("s", 0, 0x2000),
        ],
    );
    assert_eq!(ids(&s[2]), ["CHECK-11"]);
    // Cutting a link in two: the rest stays linked and leaks.
    let (s, end) = run(
        true,
        &[
            alloc("s", 0x2000),
            link("s", A, 0, 0x2000),
            unlink("s", 0, 0x1000),
            free("s"),
        ],
    );
    assert_eq!(ids(&s[2]), ["CHECK-11"]);
    assert_eq!(ids(&s[3]), ["CHECK-14"]);
    assert_eq!(ids(&end), ["CHECK-22"]);
    // Destroy over more than is linked.
    let (s, _) = run(
        true,
        &[
            alloc("s", 0x2000),
            link("s", A, 0, 0x1000),
            destroy("s", 0x2000),
        ],
    );
    assert_eq!(ids(&s[2]), ["CHECK-11"]);
}

#[test]
fn check_12_attrs_mismatch() {
    let (s, _) = run(
        false,
        &[
            alloc("s", G),
            link_with("s", A, 0, G, Dir::FROM_DEVICE, Attrs(0)),
            unlink_with("s", 0, G, Dir::FROM_DEVICE, Attrs::SKIP_CPU_SYNC),
        ],
    );
    assert_eq!(ids(&s[2]), ["CHECK-12"]);
    let (s, _) = run(
        true,
        &[
            alloc("s", G),
            link_with("s", A, 0, G, Dir::FROM_DEVICE, Attrs(0)),
            unlink_with("s", 0, G, Dir::TO_DEVICE, Attrs(0)),
        ],
    );
    assert_eq!(ids(&s[2]), ["CHECK-12"]);
}

#[test]
fn check_13_destroy_partial() {
    let (s, end) = run(
        true,
        &[
            alloc("s", 0x2000),
            link("s", A, 0, 0x1000),
            link("s", A + 0x5000, 0x1000, 0x1000),
            destroy("s", 0x1000),
        ],
    );
    assert_eq!(ids(&s[3]), ["CHECK-13"]);
    assert_eq!(ids(&end), ["CHECK-22"]);
    let (s, end) = run(
        true,
        &[
            alloc("s", 0x2000),
            link("s", A, 0, 0x2000),
            destroy("s", 0x2000),
        ],
    );
    assert!(s[2].is_empty() && end.is_empty());
}

#[test]
fn check_14_free_with_live_links() {
    let (s, end) = run(true, &[alloc("s", G), link("s", A, 0, G), free("s")]);
    assert_eq!(ids(&s[2]), ["CHECK-14"]);
    assert_eq!(ids(&end), ["CHECK-22"]);
}

#[test]
fn check_15_streaming_call_on_iova_address() {
    let (s, _) = run(
        true,
        &[
            alloc("s", G),
            link("s", A, 0, G),
            unmap(Entry::Phys, 0xFFFF_0000, G),
        ],
    );
    assert_eq!(ids(&s[2]), ["CHECK-15"]);
    let (s, _) = run(
        true,
        &[
            alloc("s", G),
            Observation::SyncSingle {
                addr: 0xFFFF_0000,
                size: G,
                dir: Dir::TO_DEVICE,
            },
        ],
    );
    assert_eq!(ids(&s[1]), ["CHECK-15"]);
}

#[test]
fn check_16_streaming_and_link_share_a_line() {
    let obs = [
        alloc("s", 0x200),
        link("s", A, 0, 0x110),
        map(A + 0x120, 0x100, 0xE000_0000),
    ];
    let (s, _) = run(false, &obs);
    assert_eq!(ids(&s[2]), ["CHECK-16"]);
    // The same on a coherent device, or a line apart, is fine.
    assert!(run(true, &obs).0[2].is_empty());
    // Two to-device transfers only clean: no harm.
    let (s, _) = run(
        false,
        &[
            alloc("s", 0x200),
            link_with("s", A, 0, 0x110, Dir::TO_DEVICE, Attrs(0)),
            Observation::Map {
                entry: Entry::Phys,
                phys: A + 0x120,
                size: 0x100,
                dir: Dir::TO_DEVICE,
                attrs: Attrs(0),
                ret: 0xE000_0000,
            },
        ],
    );
    assert!(s[2].is_empty());
    let (s, _) = run(
        false,
        &[
            alloc("s", 0x100),
            link("s", A, 0, 0x100),
            map(A + 0x140, 0x100, 0xE000_0000),
        ],
    );
    assert!(s[2].is_empty());
}

#[test]
fn check_17_cpu_access_while_linked() {
    let obs = [
        alloc("s", G),
        link("s", A, 0, G),
        Observation::CpuAccess {
            addr: A + 0x80,
            len: 4,
            write: false,
        },
        unlink("s", 0, G),
        Observation::CpuAccess {
            addr: A + 0x80,
            len: 4,
            write: true,
        },
    ];
    let (s, _) = run(false, &obs);
    assert_eq!(ids(&s[2]), ["CHECK-17"]);
    assert!(s[4].is_empty());
    assert!(run(true, &obs).0[2].is_empty());
}

#[test]
fn check_18_cpu_write_in_a_shared_line() {
    let obs = [
        alloc("s", 0x100),
        link_with("s", A + 0x10, 0, 0x100, Dir::FROM_DEVICE, Attrs(0)),
        Observation::CpuAccess {
            addr: A,
            len: 0x10,
            write: true,
        },
    ];
    let mut c = Checker::new(facts(false));
    c.observe(&obs[0], &[]);
    c.observe(&obs[1], &[]);
    assert_eq!(ids(&c.observe(&obs[2], &[])), ["CHECK-18"]);
    // A read there, or a to-device buffer, is fine.
    let mut c = Checker::new(facts(false));
    c.observe(&obs[0], &[]);
    c.observe(
        &link_with("s", A + 0x10, 0, 0x100, Dir::TO_DEVICE, Attrs(0)),
        &[],
    );
    assert!(c.observe(&obs[2], &[]).is_empty());
    // The buffer's part of the line went to a bounce slot: the line is the CPU's alone.
    let mut c = Checker::new(facts(false));
    c.observe(&obs[0], &[]);
    c.observe(
        &obs[1],
        &[SlotEvent::Alloc {
            slot: 0x1000,
            orig: A + 0x10,
            len: 0x100,
        }],
    );
    assert!(c.observe(&obs[2], &[]).is_empty());
}

#[test]
fn check_19_skip_cpu_sync_on_ram() {
    let l = link_with("s", A, 0, G, Dir::TO_DEVICE, Attrs::SKIP_CPU_SYNC);
    assert_eq!(
        ids(&run(false, &[alloc("s", G), l.clone()]).0[1]),
        ["CHECK-19"]
    );
    assert!(run(true, &[alloc("s", G), l]).0[1].is_empty());
    let mmio = link_with(
        "s",
        BAR,
        0,
        G,
        Dir::TO_DEVICE,
        Attrs(Attrs::SKIP_CPU_SYNC.0 | Attrs::MMIO.0),
    );
    assert!(run(false, &[alloc("s", G), mmio]).0[1].is_empty());
}

#[test]
fn check_20_wrong_memory_kind() {
    let bar_as_ram = link("s", BAR, 0, G);
    assert_eq!(
        ids(&run(true, &[alloc("s", G), bar_as_ram]).0[1]),
        ["CHECK-20"]
    );
    let ram_as_mmio = link_with("s", A, 0, G, Dir::TO_DEVICE, Attrs::MMIO);
    assert_eq!(
        ids(&run(true, &[alloc("s", G), ram_as_mmio]).0[1]),
        ["CHECK-20"]
    );
}

#[test]
fn check_21_to_25_leaks() {
    let (_, end) = run(true, &[alloc("s", G)]);
    assert_eq!(ids(&end), ["CHECK-21"]);
    // A state overwritten by a second try_alloc leaks the first reservation.
    let (_, end) = run(true, &[alloc("s", G), alloc("s", G), free("s")]);
    assert_eq!(ids(&end), ["CHECK-21"]);
    // A live slot with no live driver record is the implementation's (live_bounce_slots).
    let slot = |slot| SlotEvent::Alloc {
        slot,
        orig: A,
        len: 0x10,
    };
    let mut c = Checker::new(facts(true));
    c.observe(&Observation::Other, &[slot(0x1000)]);
    assert!(c.finish().is_empty());
    // Under a bounced link the driver never unlinked, it is the driver's leak.
    c.observe(&alloc("s", G), &[]);
    c.observe(&link("s", A, 0, G), &[slot(0x2000)]);
    assert_eq!(ids(&c.finish()), ["CHECK-21", "CHECK-22", "CHECK-23"]);
    c.observe(&Observation::Other, &[SlotEvent::Free { slot: 0x1000 }]);
    c.observe(&Observation::Other, &[SlotEvent::Free { slot: 0x2000 }]);
    assert_eq!(ids(&c.finish()), ["CHECK-21", "CHECK-22"]);
    let (_, end) = run(true, &[map(A, G, 0xE000_0000)]);
    assert_eq!(ids(&end), ["CHECK-25"]);
    // dma_need_unmap false: the driver may keep no addresses and never unmap (STREAM-06).
    let (_, end) = run(true, &[map(A, G, A), Observation::NeedUnmap { ret: false }]);
    assert!(end.is_empty());
    let (_, end) = run(true, &[map(A, G, dmaconf_platform::DMA_MAPPING_ERROR)]);
    assert!(end.is_empty(), "a failed map leaves nothing to unmap");
}

#[test]
fn check_24_mismatched_unmap() {
    let (s, end) = run(
        true,
        &[
            Observation::Map {
                entry: Entry::Resource,
                phys: BAR,
                size: G,
                dir: Dir::FROM_DEVICE,
                attrs: Attrs::MMIO,
                ret: 0xE000_0000,
            },
            unmap(Entry::Page, 0xE000_0000, G),
        ],
    );
    assert_eq!(ids(&s[1]), ["CHECK-24"]);
    assert!(end.is_empty());
    let (s, _) = run(
        true,
        &[
            map(A, G, 0xE000_0000),
            unmap(Entry::Phys, 0xE000_0000, 0x800),
        ],
    );
    assert_eq!(ids(&s[1]), ["CHECK-24"]);
    let (s, _) = run(true, &[unmap(Entry::Phys, 0xE000_0000, G)]);
    assert_eq!(ids(&s[0]), ["CHECK-24"]);
    let (s, end) = run(
        true,
        &[map(A, G, 0xE000_0000), unmap(Entry::Phys, 0xE000_0000, G)],
    );
    assert!(s[1].is_empty() && end.is_empty());
}
