//! The misuse checker of `spec/10-misuse-checker.md`.
//!
//! It judges a driver's use of the two-step (IOVA) DMA API the way Driver Verifier judges a
//! Windows driver: from the outside. It sees the call stream (each call with its arguments, its
//! return and the caller's state words), the device's and the CPU's accesses, the bounce-slot
//! events of the machine, and read-only platform facts. It never sees an implementation's data
//! structures, so the same checker judges every door, and a kernel module can do the same from
//! kprobes on the exported `dma_iova_*` functions.
//!
//! The checker only reports: feeding it a call changes nothing about that call.
#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

mod ranges;

use std::collections::{BTreeMap, BTreeSet};

use dmaconf_platform::{Attrs, Dir};
use ranges::{align_down, align_up, intersects, subtract, Range};

/// A code of the catalogue (`#### CHECK-NN` in `spec/10-misuse-checker.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    NoReservation,
    StubStateNotZeroed,
    UseAfterFree,
    DoubleFree,
    InvalidSize,
    LinkOutOfBounds,
    LinkOverlap,
    LinkMisaligned,
    InvalidDirection,
    LinkWithoutSync,
    UnlinkNotLinked,
    AttrsMismatch,
    DestroyPartial,
    FreeWithLiveLinks,
    MixedApi,
    StreamLinkSharedLine,
    CpuAccessWhileLinked,
    SharedCacheLine,
    SkipSyncCached,
    WrongMemoryKind,
    LeakedReservation,
    LeakedLink,
    LeakedBounceSlot,
    MismatchedUnmap,
    LeakedStreamingMapping,
}

impl Code {
    /// Every code, in catalogue order (CHECK-01 first).
    pub const ALL: [Code; 25] = [
        Code::NoReservation,
        Code::StubStateNotZeroed,
        Code::UseAfterFree,
        Code::DoubleFree,
        Code::InvalidSize,
        Code::LinkOutOfBounds,
        Code::LinkOverlap,
        Code::LinkMisaligned,
        Code::InvalidDirection,
        Code::LinkWithoutSync,
        Code::UnlinkNotLinked,
        Code::AttrsMismatch,
        Code::DestroyPartial,
        Code::FreeWithLiveLinks,
        Code::MixedApi,
        Code::StreamLinkSharedLine,
        Code::CpuAccessWhileLinked,
        Code::SharedCacheLine,
        Code::SkipSyncCached,
        Code::WrongMemoryKind,
        Code::LeakedReservation,
        Code::LeakedLink,
        Code::LeakedBounceSlot,
        Code::MismatchedUnmap,
        Code::LeakedStreamingMapping,
    ];

    /// The rule ID, `CHECK-NN`.
    pub fn id(self) -> String {
        let n = Code::ALL.iter().position(|c| *c == self).unwrap_or(0) + 1;
        format!("CHECK-{n:02}")
    }

    /// The code name the catalogue gives it.
    pub fn name(self) -> &'static str {
        match self {
            Code::NoReservation => "no_reservation",
            Code::StubStateNotZeroed => "stub_state_not_zeroed",
            Code::UseAfterFree => "use_after_free",
            Code::DoubleFree => "double_free",
            Code::InvalidSize => "invalid_size",
            Code::LinkOutOfBounds => "link_out_of_bounds",
            Code::LinkOverlap => "link_overlap",
            Code::LinkMisaligned => "link_misaligned",
            Code::InvalidDirection => "invalid_direction",
            Code::LinkWithoutSync => "link_without_sync",
            Code::UnlinkNotLinked => "unlink_not_linked",
            Code::AttrsMismatch => "attrs_mismatch",
            Code::DestroyPartial => "destroy_partial",
            Code::FreeWithLiveLinks => "free_with_live_links",
            Code::MixedApi => "mixed_api",
            Code::StreamLinkSharedLine => "stream_link_shared_line",
            Code::CpuAccessWhileLinked => "cpu_access_while_linked",
            Code::SharedCacheLine => "shared_cache_line",
            Code::SkipSyncCached => "skip_sync_cached",
            Code::WrongMemoryKind => "wrong_memory_kind",
            Code::LeakedReservation => "leaked_reservation",
            Code::LeakedLink => "leaked_link",
            Code::LeakedBounceSlot => "leaked_bounce_slot",
            Code::MismatchedUnmap => "mismatched_unmap",
            Code::LeakedStreamingMapping => "leaked_streaming_mapping",
        }
    }
}

/// Read-only facts of the platform the checker needs.
#[derive(Clone, Debug)]
pub struct Facts {
    /// The IOVA granule G.
    pub granule: u64,
    /// `dev_is_dma_coherent(dev)`.
    pub coherent: bool,
    /// `dma_get_cache_alignment()`.
    pub cache_line: u64,
    /// Physical ranges `[start, end)` that are not RAM (peer BARs, MMIO); the rest is RAM.
    pub not_ram: Vec<Range>,
}

/// The streaming entry point of a map or unmap (STREAM-14 pairs them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Phys,
    Page,
    Resource,
}

/// One thing the driver, the device or the CPU did, as the checker sees it. A state is named by
/// the caller's handle for it; the checker keeps its own record of what try_alloc returned.
#[derive(Clone, Debug)]
pub enum Observation {
    TryAlloc {
        state: String,
        phys: u64,
        size: u64,
        ret: bool,
        /// The state words after the call.
        after: (u64, u64),
    },
    Link {
        state: String,
        phys: u64,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
        ret: i32,
    },
    Sync {
        state: String,
        offset: u64,
        size: u64,
        ret: i32,
    },
    Unlink {
        state: String,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    },
    Destroy {
        state: String,
        mapped_len: u64,
        dir: Dir,
        attrs: Attrs,
    },
    Free {
        state: String,
    },
    UseIova {
        state: String,
        ret: bool,
    },
    IovaSize {
        state: String,
        ret: u64,
    },
    /// The driver wrote its state struct by hand.
    StateSet {
        state: String,
    },
    Map {
        entry: Entry,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
        /// The DMA address, or `DMA_MAPPING_ERROR`.
        ret: u64,
    },
    Unmap {
        entry: Entry,
        addr: u64,
        size: u64,
        dir: Dir,
    },
    SyncSingle {
        addr: u64,
        size: u64,
        dir: Dir,
    },
    MapSg {
        list: String,
        segs: Vec<(u64, u64)>,
        dir: Dir,
        ret: i32,
    },
    UnmapSg {
        list: String,
        dir: Dir,
    },
    DeviceAccess {
        addr: u64,
        len: u64,
    },
    CpuAccess {
        addr: u64,
        len: u64,
        write: bool,
    },
    /// `dma_need_unmap`: false lets the driver skip the unmaps of streaming mappings (STREAM-06).
    NeedUnmap {
        ret: bool,
    },
    /// Anything the checker has no rule about (time, P2P queries, speculative loads).
    Other,
}

/// A bounce-slot event of the machine (`swiotlb.alloc` / `swiotlb.free`).
#[derive(Clone, Copy, Debug)]
pub enum SlotEvent {
    Alloc { slot: u64, orig: u64, len: u64 },
    Free { slot: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// No try_alloc filled it (or the driver wrote it by hand since).
    Unset,
    /// The last try_alloc returned false.
    Refused,
    /// `Live(reservation index)`.
    Live(usize),
    Freed,
}

#[derive(Clone, Debug)]
struct Reservation {
    /// IOVA of byte 0 (`state.addr`) and the size asked for.
    addr: u64,
    size: u64,
    /// The reserved IOVA range (granule-expanded, TRYALLOC-06).
    iova: Range,
    freed: bool,
}

#[derive(Clone, Debug)]
struct Link {
    res: usize,
    offset: u64,
    size: u64,
    phys: u64,
    dir: Dir,
    attrs: Attrs,
    /// Granule-expanded IOVA ranges no dma_iova_sync has covered yet.
    unsynced: Vec<Range>,
    /// Original physical ranges the link bounced (their lines are the bounce's, HAZ-06).
    bounced: Vec<Range>,
}

impl Link {
    fn bytes(&self) -> Range {
        (self.offset, self.offset + self.size)
    }
    fn phys_range(&self) -> Range {
        (self.phys, self.phys + self.size)
    }
}

/// The arguments of one `dma_iova_link`, for its checks.
#[derive(Clone, Copy)]
struct LinkCall {
    phys: u64,
    offset: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
}

#[derive(Clone, Debug)]
struct Stream {
    /// `Some(list)` for a scatterlist, else the single mapping's entry point and DMA range.
    list: Option<String>,
    entry: Entry,
    dma: u64,
    size: u64,
    dir: Dir,
    phys: Vec<Range>,
    bounced: Vec<Range>,
}

/// The checker: one per vector run (one device).
#[derive(Clone, Debug)]
pub struct Checker {
    facts: Facts,
    states: BTreeMap<String, Status>,
    reservations: Vec<Reservation>,
    links: Vec<Link>,
    streams: Vec<Stream>,
    slots: BTreeSet<u64>,
    /// `dma_need_unmap` said false: streaming mappings need no unmap (CHECK-25 is off).
    unmap_optional: bool,
}

/// What one observation produced: the codes, each once, in catalogue order.
pub type Findings = BTreeSet<Code>;

impl Checker {
    pub fn new(facts: Facts) -> Checker {
        Checker {
            facts,
            states: BTreeMap::new(),
            reservations: Vec::new(),
            links: Vec::new(),
            streams: Vec::new(),
            slots: BTreeSet::new(),
            unmap_optional: false,
        }
    }

    fn g(&self) -> u64 {
        self.facts.granule.max(1)
    }

    fn status(&self, state: &str) -> Status {
        self.states.get(state).copied().unwrap_or(Status::Unset)
    }

    /// The reservation a call on `state` acts on, or the code that says why there is none
    /// (CHECK-01, CHECK-03; CHECK-04 for a free).
    fn live(&self, state: &str, freeing: bool) -> Result<usize, Code> {
        match self.status(state) {
            Status::Live(r) => Ok(r),
            Status::Unset | Status::Refused => Err(Code::NoReservation),
            Status::Freed if freeing => Err(Code::DoubleFree),
            Status::Freed => Err(Code::UseAfterFree),
        }
    }

    /// Feeds one observation and the machine's bounce-slot events of the same step.
    pub fn observe(&mut self, obs: &Observation, slots: &[SlotEvent]) -> Findings {
        let mut f = Findings::new();
        let bounced: Vec<Range> = slots
            .iter()
            .filter_map(|e| match e {
                SlotEvent::Alloc { orig, len, .. } => Some((*orig, orig.saturating_add(*len))),
                SlotEvent::Free { .. } => None,
            })
            .collect();
        for e in slots {
            match e {
                SlotEvent::Alloc { slot, .. } => {
                    self.slots.insert(*slot);
                }
                SlotEvent::Free { slot } => {
                    self.slots.remove(slot);
                }
            }
        }
        match obs {
            Observation::TryAlloc {
                state,
                phys,
                size,
                ret,
                after,
            } => {
                // TRYALLOC-04/05: size 0 or bit 63.
                if *size == 0 || size >> 63 != 0 {
                    f.insert(Code::InvalidSize);
                }
                let status = if *ret {
                    let g = self.g();
                    let pad = phys & (g - 1);
                    let base = after.0.wrapping_sub(pad);
                    self.reservations.push(Reservation {
                        addr: after.0,
                        size: *size,
                        iova: (base, base.saturating_add(align_up(size + pad, g))),
                        freed: false,
                    });
                    Status::Live(self.reservations.len() - 1)
                } else {
                    Status::Refused
                };
                self.states.insert(state.clone(), status);
            }
            Observation::Link {
                state,
                phys,
                offset,
                size,
                dir,
                attrs,
                ret,
            } => {
                self.check_dir(*dir, &mut f);
                match self.live(state, false) {
                    Err(c) => {
                        f.insert(c);
                    }
                    Ok(res) => {
                        self.check_link(
                            res,
                            LinkCall {
                                phys: *phys,
                                offset: *offset,
                                size: *size,
                                dir: *dir,
                                attrs: *attrs,
                            },
                            &mut f,
                        );
                        // LINK-05: a size-0 link links no byte of the caller's, so there is
                        // nothing to unlink or leak: it gets no record.
                        if *ret == 0 && *size > 0 {
                            let g = self.g();
                            let iova = self.reservations[res].addr.wrapping_add(*offset);
                            let lo = align_down(iova, g);
                            let hi = align_up(iova.saturating_add(*size), g);
                            self.links.push(Link {
                                res,
                                offset: *offset,
                                size: *size,
                                phys: *phys,
                                dir: *dir,
                                attrs: *attrs,
                                unsynced: vec![(lo, hi)],
                                bounced: bounced.clone(),
                            });
                        }
                    }
                }
            }
            Observation::Sync {
                state,
                offset,
                size,
                ret,
            } => match self.live(state, false) {
                Err(c) => {
                    f.insert(c);
                }
                Ok(res) if *ret == 0 => {
                    // SYNC-01: the granule-expanded range is now usable by the device.
                    let g = self.g();
                    let a = self.reservations[res].addr.wrapping_add(*offset);
                    let covered = (align_down(a, g), align_up(a.saturating_add(*size), g));
                    for l in self.links.iter_mut().filter(|l| l.res == res) {
                        l.unsynced = l
                            .unsynced
                            .iter()
                            .flat_map(|r| subtract(*r, covered))
                            .collect();
                    }
                }
                Ok(_) => {}
            },
            Observation::Unlink {
                state,
                offset,
                size,
                dir,
                attrs,
            } => {
                self.check_dir(*dir, &mut f);
                match self.live(state, false) {
                    Err(c) => {
                        f.insert(c);
                    }
                    Ok(res) => self.unlink(res, *offset, *size, *dir, *attrs, &mut f),
                }
            }
            Observation::Destroy {
                state,
                mapped_len,
                dir,
                attrs,
            } => {
                self.check_dir(*dir, &mut f);
                match self.live(state, true) {
                    Err(c) => {
                        f.insert(c);
                    }
                    Ok(res) => {
                        // DESTROY-01: unlink(0, mapped_len), then free; DESTROY-03: the rest
                        // survives.
                        if *mapped_len > 0 {
                            self.unlink(res, 0, *mapped_len, *dir, *attrs, &mut f);
                        }
                        if self.links.iter().any(|l| l.res == res) {
                            f.insert(Code::DestroyPartial);
                        }
                        self.free(state, res);
                    }
                }
            }
            Observation::Free { state } => match self.live(state, true) {
                Err(c) => {
                    f.insert(c);
                }
                Ok(res) => {
                    if self.links.iter().any(|l| l.res == res) {
                        f.insert(Code::FreeWithLiveLinks);
                    }
                    self.free(state, res);
                }
            },
            Observation::UseIova { state, ret } => {
                if *ret && self.status(state) == Status::Refused {
                    f.insert(Code::StubStateNotZeroed);
                }
            }
            Observation::IovaSize { state, ret } => {
                if *ret != 0 && self.status(state) == Status::Refused {
                    f.insert(Code::StubStateNotZeroed);
                }
            }
            Observation::StateSet { state } => {
                self.states.insert(state.clone(), Status::Unset);
            }
            Observation::Map {
                entry,
                phys,
                size,
                dir,
                ret,
                ..
            } => {
                self.check_dir(*dir, &mut f);
                if *ret != dmaconf_platform::DMA_MAPPING_ERROR {
                    let s = Stream {
                        list: None,
                        entry: *entry,
                        dma: *ret,
                        size: *size,
                        dir: *dir,
                        phys: vec![(*phys, phys.saturating_add(*size))],
                        bounced,
                    };
                    self.check_stream_lines(&s, &mut f);
                    self.streams.push(s);
                }
            }
            Observation::MapSg {
                list,
                segs,
                dir,
                ret,
            } => {
                self.check_dir(*dir, &mut f);
                if *ret > 0 {
                    let s = Stream {
                        list: Some(list.clone()),
                        entry: Entry::Phys,
                        dma: 0,
                        size: 0,
                        dir: *dir,
                        phys: segs
                            .iter()
                            .map(|(p, l)| (*p, p.saturating_add(*l)))
                            .collect(),
                        bounced,
                    };
                    self.check_stream_lines(&s, &mut f);
                    self.streams.retain(|x| x.list.as_ref() != Some(list));
                    self.streams.push(s);
                }
            }
            Observation::Unmap {
                entry,
                addr,
                size,
                dir,
            } => {
                self.check_dir(*dir, &mut f);
                let found = self
                    .streams
                    .iter()
                    .position(|s| s.list.is_none() && s.dma == *addr);
                match found {
                    Some(i) => {
                        let s = self.streams.remove(i);
                        if s.entry != *entry || s.size != *size || s.dir != *dir {
                            f.insert(Code::MismatchedUnmap);
                        }
                    }
                    None => {
                        f.insert(self.unknown_streaming_address(*addr, *size));
                    }
                }
            }
            Observation::SyncSingle { addr, size, dir } => {
                self.check_dir(*dir, &mut f);
                let end = addr.saturating_add(*size);
                let inside = self
                    .streams
                    .iter()
                    .any(|s| s.list.is_none() && s.dma <= *addr && end <= s.dma + s.size);
                if !inside {
                    f.insert(self.unknown_streaming_address(*addr, *size));
                }
            }
            Observation::UnmapSg { list, dir } => {
                self.check_dir(*dir, &mut f);
                match self
                    .streams
                    .iter()
                    .position(|s| s.list.as_ref() == Some(list))
                {
                    Some(i) => {
                        if self.streams.remove(i).dir != *dir {
                            f.insert(Code::MismatchedUnmap);
                        }
                    }
                    None => {
                        f.insert(Code::MismatchedUnmap);
                    }
                }
            }
            Observation::DeviceAccess { addr, len } => {
                // CHECK-10 on every platform: any granule of the access inside a live link that
                // no sync covered since the link.
                let acc = (*addr, addr.saturating_add(*len));
                let g = self.g();
                let acc_g = (align_down(acc.0, g), align_up(acc.1, g));
                for l in &self.links {
                    let iova = self.reservations[l.res].addr.wrapping_add(l.offset);
                    let linked = (iova, iova.saturating_add(l.size));
                    if intersects(linked, acc) && l.unsynced.iter().any(|u| intersects(*u, acc_g)) {
                        f.insert(Code::LinkWithoutSync);
                    }
                }
            }
            Observation::CpuAccess { addr, len, write } => {
                if !self.facts.coherent {
                    self.check_cpu(*addr, *len, *write, &mut f);
                }
            }
            Observation::NeedUnmap { ret } => {
                if !ret {
                    self.unmap_optional = true;
                }
            }
            Observation::Other => {}
        }
        f
    }

    /// The findings at the end of the vector (CHECK-21, -22, -23, -25).
    pub fn finish(&self) -> Findings {
        let mut f = Findings::new();
        if self.reservations.iter().any(|r| !r.freed) {
            f.insert(Code::LeakedReservation);
        }
        if !self.links.is_empty() {
            f.insert(Code::LeakedLink);
        }
        // A live slot is the driver's leak when a link or mapping it never undid was bounced;
        // a slot the implementation keeps after the driver undid everything (LINK-09's size-0
        // bounce on io-pgtable-arm) is the implementation's, judged by `live_bounce_slots`.
        let bounced_left = self.links.iter().any(|l| !l.bounced.is_empty())
            || self.streams.iter().any(|s| !s.bounced.is_empty());
        if !self.slots.is_empty() && bounced_left {
            f.insert(Code::LeakedBounceSlot);
        }
        if !self.streams.is_empty() && !self.unmap_optional {
            f.insert(Code::LeakedStreamingMapping);
        }
        f
    }

    fn check_dir(&self, dir: Dir, f: &mut Findings) {
        // DMA_NONE (3) and anything above it (PROT-02, valid_dma_direction).
        if dir.0 > 2 {
            f.insert(Code::InvalidDirection);
        }
    }

    fn free(&mut self, state: &str, res: usize) {
        self.reservations[res].freed = true;
        self.states.insert(state.to_string(), Status::Freed);
    }

    /// A streaming unmap or sync whose address is no live streaming mapping's: the IOVA API's
    /// (CHECK-15) when it lies in a live reservation, else unknown (CHECK-24).
    fn unknown_streaming_address(&self, addr: u64, size: u64) -> Code {
        let r = (addr, addr.saturating_add(size.max(1)));
        if self
            .reservations
            .iter()
            .any(|x| !x.freed && intersects(x.iova, r))
        {
            Code::MixedApi
        } else {
            Code::MismatchedUnmap
        }
    }

    /// The checks of a link on a live reservation (CHECK-06, -07, -08, -16, -19, -20).
    fn check_link(&self, res: usize, call: LinkCall, f: &mut Findings) {
        let LinkCall {
            phys,
            offset,
            size,
            dir,
            attrs,
        } = call;
        let g = self.g();
        let r = &self.reservations[res];
        let end = offset.checked_add(size);
        if end.is_none_or(|e| e > r.size) {
            f.insert(Code::LinkOutOfBounds);
        }
        let bytes = (offset, end.unwrap_or(u64::MAX));
        let mine: Vec<&Link> = self.links.iter().filter(|l| l.res == res).collect();
        if mine.iter().any(|l| intersects(l.bytes(), bytes)) {
            f.insert(Code::LinkOverlap);
        }
        // CALLER-02 / LINK-05: the IOVA start is granule aligned after the phys pad is taken
        // off, and only the link at offset 0 may have an unaligned phys (LINK-01).
        let iova = r.addr.wrapping_add(offset);
        let misaligned_start =
            (phys & (g - 1)) != (iova & (g - 1)) || (offset > 0 && phys & (g - 1) != 0);
        // Every link but the last ends on a granule boundary.
        let ends_off = |l_off: u64, l_size: u64| {
            r.addr.wrapping_add(l_off).wrapping_add(l_size) & (g - 1) != 0
        };
        let earlier_ends_off = mine.iter().any(|l| {
            l.offset < offset && !intersects(l.bytes(), bytes) && ends_off(l.offset, l.size)
        });
        let this_ends_off_before_later = ends_off(offset, size)
            && mine
                .iter()
                .any(|l| l.offset > offset && !intersects(l.bytes(), bytes));
        if misaligned_start || earlier_ends_off || this_ends_off_before_later {
            f.insert(Code::LinkMisaligned);
        }
        let prange = (phys, phys.saturating_add(size));
        let has_ram = self.has_ram(prange);
        let has_other = self.facts.not_ram.iter().any(|x| intersects(*x, prange));
        let mmio = attrs.0 & Attrs::MMIO.0 != 0;
        if !self.facts.coherent && attrs.0 & Attrs::SKIP_CPU_SYNC.0 != 0 && !mmio && has_ram {
            f.insert(Code::SkipSyncCached);
        }
        if (mmio && has_ram) || (!mmio && has_other) {
            f.insert(Code::WrongMemoryKind);
        }
        if !self.facts.coherent {
            let lines = self.lines(prange);
            if self.streams.iter().any(|s| {
                !(s.dir == Dir::TO_DEVICE && dir == Dir::TO_DEVICE)
                    && s.phys.iter().any(|p| intersects(self.lines(*p), lines))
            }) {
                f.insert(Code::StreamLinkSharedLine);
            }
        }
    }

    /// CHECK-16 for a new streaming mapping against live links.
    fn check_stream_lines(&self, s: &Stream, f: &mut Findings) {
        if self.facts.coherent {
            return;
        }
        let hit = self.links.iter().any(|l| {
            if l.dir == Dir::TO_DEVICE && s.dir == Dir::TO_DEVICE {
                return false;
            }
            let ll = self.lines(l.phys_range());
            s.phys.iter().any(|p| intersects(self.lines(*p), ll))
        });
        if hit {
            f.insert(Code::StreamLinkSharedLine);
        }
    }

    fn has_ram(&self, r: Range) -> bool {
        let mut rest = vec![r];
        for x in &self.facts.not_ram {
            rest = rest.into_iter().flat_map(|p| subtract(p, *x)).collect();
        }
        rest.iter().any(|p| p.0 < p.1)
    }

    fn lines(&self, r: Range) -> Range {
        let c = self.facts.cache_line.max(1);
        (align_down(r.0, c), align_up(r.1, c))
    }

    /// Unlink of `[offset, offset + size)` on reservation `res` (also destroy's first part):
    /// CHECK-11 for holes and cut links, CHECK-12 for another dir or attrs.
    fn unlink(
        &mut self,
        res: usize,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
        f: &mut Findings,
    ) {
        let g = self.g();
        let base = self.reservations[res].addr;
        let range = (offset, offset.saturating_add(size));
        let to_iova = |r: Range| {
            let a = base.wrapping_add(r.0);
            (align_down(a, g), align_up(base.wrapping_add(r.1), g))
        };
        let mut holes = vec![to_iova(range)];
        let mut kept = Vec::new();
        for l in std::mem::take(&mut self.links) {
            if l.res != res || !intersects(l.bytes(), range) {
                kept.push(l);
                continue;
            }
            holes = holes
                .into_iter()
                .flat_map(|h| subtract(h, to_iova(l.bytes())))
                .collect();
            if l.dir != dir || l.attrs != attrs {
                f.insert(Code::AttrsMismatch);
            }
            if l.bytes().0 < range.0 || l.bytes().1 > range.1 {
                // Cut in two: what lies outside the range stays linked.
                f.insert(Code::UnlinkNotLinked);
                for (lo, hi) in subtract(l.bytes(), range) {
                    kept.push(Link {
                        offset: lo,
                        size: hi - lo,
                        phys: l.phys + (lo - l.offset),
                        ..l.clone()
                    });
                }
            }
        }
        self.links = kept;
        if size > 0 && holes.iter().any(|h| h.0 < h.1) {
            f.insert(Code::UnlinkNotLinked);
        }
    }

    /// CHECK-17 and CHECK-18 for a CPU access on a non-coherent device.
    fn check_cpu(&self, addr: u64, len: u64, write: bool, f: &mut Findings) {
        let acc = (addr, addr.saturating_add(len));
        // Buffers in flight: (phys ranges, dir, bounced ranges).
        let mut flight: Vec<(Range, Dir, &[Range])> = Vec::new();
        for l in &self.links {
            if l.attrs.0 & Attrs::MMIO.0 == 0 {
                flight.push((l.phys_range(), l.dir, &l.bounced));
            }
        }
        for s in &self.streams {
            for p in &s.phys {
                flight.push((*p, s.dir, &s.bounced));
            }
        }
        if flight.iter().any(|(p, _, _)| intersects(*p, acc)) {
            f.insert(Code::CpuAccessWhileLinked);
        }
        if !write {
            return;
        }
        for (p, dir, bounced) in &flight {
            if *dir == Dir::TO_DEVICE {
                continue;
            }
            let c = self.facts.cache_line.max(1);
            // The partial first and last lines of the buffer, and the buffer's part of each.
            let head = (align_down(p.0, c), p.0);
            let tail = (p.1, align_up(p.1, c));
            for (outside, own) in [
                (head, (p.0, p.1.min(head.0 + c))),
                (tail, (p.0.max(align_down(p.1, c)), p.1)),
            ] {
                if outside.0 >= outside.1 || !intersects(outside, acc) {
                    continue;
                }
                let bounced_here = bounced.iter().any(|b| b.0 <= own.0 && own.1 <= b.1);
                if !bounced_here {
                    f.insert(Code::SharedCacheLine);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
