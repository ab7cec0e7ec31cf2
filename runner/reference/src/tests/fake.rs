//! A tiny test-only platform: records every call, keeps a page table in a map, and has a
//! bump-allocated bounce pool. Not the machine: just enough to watch the reference's calls.

use std::cell::RefCell;
use std::collections::BTreeMap;

use dmaconf_platform::{errno, Dir, Platform, PlatformFacts, Prot, Region, WarnCode};

/// One recorded platform call (facts, reserved regions and the CPU number are not recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Map {
        iova: u64,
        phys: u64,
        len: u64,
        prot: u32,
    },
    SyncMap {
        iova: u64,
        len: u64,
    },
    Unmap {
        iova: u64,
        len: u64,
    },
    IotlbSync {
        iova: u64,
        len: u64,
    },
    FlushAll,
    IovaToPhys(u64),
    ForDevice {
        phys: u64,
        len: u64,
        dir: u32,
    },
    ForCpu {
        phys: u64,
        len: u64,
        dir: u32,
    },
    Barrier,
    BounceAlloc {
        orig: u64,
        len: u64,
        align: u64,
        min_align: u64,
    },
    BounceFree {
        slot: u64,
        len: u64,
    },
    IsBounce(u64),
    BounceOrig(u64),
    Copy {
        dst: u64,
        src: u64,
        len: u64,
    },
    Fill {
        dst: u64,
        byte: u8,
        len: u64,
    },
    Warn(WarnCode),
}

/// A live bounce allocation: `[start, end)` of slots, the address handed out, its original.
#[derive(Clone, Copy, Debug)]
struct Bounce {
    start: u64,
    end: u64,
    tlb: u64,
    orig: u64,
}

pub const POOL_BASE: u64 = 0x8000_0000;
pub const POOL_SIZE: u64 = 0x100_0000;

pub struct Fake {
    pub facts: PlatformFacts,
    pub regions: Vec<Region>,
    pub cpu: u32,
    pub calls: RefCell<Vec<Call>>,
    /// IOVA granule page -> (phys page, prot).
    ptes: BTreeMap<u64, (u64, Prot)>,
    pool_next: u64,
    bounces: Vec<Bounce>,
    /// Result of `iotlb_sync_map`.
    pub sync_map_ret: i32,
}

/// x86-like: VT-d, translated, coherent, trusted PCI device with a 32-bit mask, 4 KiB granule,
/// 48-bit aperture, one CPU, a bounce pool.
pub fn x86_facts() -> PlatformFacts {
    PlatformFacts {
        dma_mask: 0xFFFF_FFFF,
        swiotlb: true,
        ..PlatformFacts::default()
    }
}

impl Fake {
    pub fn new(facts: PlatformFacts) -> Fake {
        Fake {
            facts,
            regions: Vec::new(),
            cpu: 0,
            calls: RefCell::new(Vec::new()),
            ptes: BTreeMap::new(),
            pool_next: POOL_BASE,
            bounces: Vec::new(),
            sync_map_ret: 0,
        }
    }

    fn g(&self) -> u64 {
        self.facts.granule().max(1)
    }

    fn rec(&self, c: Call) {
        self.calls.borrow_mut().push(c);
    }

    /// Takes the recorded calls.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    /// Number of live translations.
    pub fn live_ptes(&self) -> usize {
        self.ptes.len()
    }

    /// Number of live bounce allocations.
    pub fn live_bounces(&self) -> usize {
        self.bounces.len()
    }
}

impl Platform for Fake {
    fn facts(&self) -> PlatformFacts {
        self.facts
    }

    fn reserved_region(&self, index: u32) -> Option<Region> {
        self.regions.get(index as usize).copied()
    }

    fn current_cpu(&self) -> u32 {
        self.cpu
    }

    fn iommu_map(&mut self, iova: u64, phys: u64, len: u64, prot: Prot) -> i32 {
        self.rec(Call::Map {
            iova,
            phys,
            len,
            prot: prot.0,
        });
        let g = self.g();
        if (iova | phys | len) & (g - 1) != 0 || len == 0 {
            return -errno::EINVAL;
        }
        if prot.0 & 3 == 0 {
            return -errno::EINVAL;
        }
        // Keeps the fake small: at most 4096 translations per map.
        if len / g > 4096 || iova.checked_add(len).is_none() || phys.checked_add(len).is_none() {
            return -errno::ENOMEM;
        }
        let pages = len / g;
        for i in 0..pages {
            if self.ptes.contains_key(&(iova / g + i)) {
                for j in 0..i {
                    self.ptes.remove(&(iova / g + j));
                }
                return -errno::EEXIST;
            }
            self.ptes.insert(iova / g + i, (phys / g + i, prot));
        }
        0
    }

    fn iotlb_sync_map(&mut self, iova: u64, len: u64) -> i32 {
        self.rec(Call::SyncMap { iova, len });
        self.sync_map_ret
    }

    fn iommu_unmap(&mut self, iova: u64, len: u64) -> u64 {
        self.rec(Call::Unmap { iova, len });
        let g = self.g();
        if (iova | len) & (g - 1) != 0 {
            return 0;
        }
        let mut done = 0;
        while done < len {
            if self.ptes.remove(&(iova.wrapping_add(done) / g)).is_none() {
                break;
            }
            done += g;
        }
        done
    }

    fn iotlb_sync(&mut self, iova: u64, len: u64) {
        self.rec(Call::IotlbSync { iova, len });
    }

    fn flush_iotlb_all(&mut self) {
        self.rec(Call::FlushAll);
    }

    fn iova_to_phys(&self, iova: u64) -> u64 {
        self.rec(Call::IovaToPhys(iova));
        let g = self.g();
        self.ptes
            .get(&(iova / g))
            .map_or(0, |(page, _)| page * g + iova % g)
    }

    fn sync_for_device(&mut self, phys: u64, len: u64, dir: Dir) {
        self.rec(Call::ForDevice {
            phys,
            len,
            dir: dir.0,
        });
    }

    fn sync_for_cpu(&mut self, phys: u64, len: u64, dir: Dir) {
        self.rec(Call::ForCpu {
            phys,
            len,
            dir: dir.0,
        });
    }

    fn sync_barrier(&mut self) {
        self.rec(Call::Barrier);
    }

    fn bounce_alloc(
        &mut self,
        orig: u64,
        len: u64,
        alloc_align_mask: u64,
        min_align_mask: u64,
        slot: &mut u64,
    ) -> i32 {
        self.rec(Call::BounceAlloc {
            orig,
            len,
            align: alloc_align_mask,
            min_align: min_align_mask,
        });
        if !self.facts.swiotlb {
            return -errno::ENOMEM;
        }
        let align = (alloc_align_mask | 2047).wrapping_add(1);
        let offset = orig & min_align_mask & (alloc_align_mask | 2047);
        let Some(size) = len
            .checked_add(offset)
            .and_then(|s| s.checked_add(align - 1))
        else {
            return -errno::ENOMEM;
        };
        let size = size & !(align - 1);
        let start = (self.pool_next + align - 1) & !(align - 1);
        if start
            .checked_add(size)
            .is_none_or(|end| end > POOL_BASE + POOL_SIZE)
        {
            return -errno::ENOMEM;
        }
        self.pool_next = start + size;
        *slot = start + offset;
        self.bounces.push(Bounce {
            start,
            end: start + size,
            tlb: start + offset,
            orig,
        });
        0
    }

    fn bounce_free(&mut self, slot: u64, len: u64) {
        self.rec(Call::BounceFree { slot, len });
        self.bounces.retain(|b| !(b.start <= slot && slot < b.end));
    }

    fn is_bounce(&self, phys: u64) -> bool {
        self.rec(Call::IsBounce(phys));
        (POOL_BASE..POOL_BASE + POOL_SIZE).contains(&phys)
    }

    fn bounce_orig(&self, phys: u64) -> u64 {
        self.rec(Call::BounceOrig(phys));
        self.bounces
            .iter()
            .find(|b| b.tlb <= phys && phys < b.end)
            .map_or(0, |b| b.orig.wrapping_add(phys - b.tlb))
    }

    fn copy(&mut self, dst: u64, src: u64, len: u64) {
        self.rec(Call::Copy { dst, src, len });
    }

    fn fill(&mut self, dst: u64, byte: u8, len: u64) {
        self.rec(Call::Fill { dst, byte, len });
    }

    fn warn(&mut self, code: WarnCode) {
        self.rec(Call::Warn(code));
    }
}
