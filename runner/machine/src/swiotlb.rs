//! The SWIOTLB bounce pool: machine memory whose slot allocator is a platform service, so that
//! every DMA layer gets the same bounce addresses and a leaked slot is seen by the machine.
//!
//! For now a stub. With no pool configured the answers are exact (every allocation fails with
//! -ENOMEM, as `swiotlb_tbl_map_single` does without a pool). With a pool configured, Linux's
//! slot search (areas, 2 KiB slots, 128-slot segments, `alloc_align_mask`, `min_align_mask`) is
//! not modelled yet: allocation fails with -ENOMEM and the machine flags it as not modelled.
//! `contains` is already exact: it is the address-range test of `swiotlb_find_pool`.

use dmaconf_platform::errno;

/// `IO_TLB_SHIFT`: slots are 2 KiB.
pub const SLOT_SHIFT: u32 = 11;

/// The label added to `Machine::not_modelled` when a pool service was used.
pub const NOT_MODELLED: &str = "swiotlb pool";

/// Where the pool lives and how it is divided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwiotlbConfig {
    /// Physical address of the first slot.
    pub base: u64,
    /// Number of 2 KiB slots.
    pub nslabs: u64,
    /// Number of areas (per-CPU allocation domains).
    pub nareas: u32,
}

/// What an allocation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BounceAlloc {
    /// 0 or -errno.
    pub ret: i32,
    /// The bounce address (valid when `ret == 0`).
    pub slot: u64,
    /// The allocation depended on a part of the pool that is not modelled yet.
    pub not_modelled: bool,
}

/// The bounce pool (stub).
#[derive(Clone, Debug)]
pub struct SwiotlbPool {
    cfg: Option<SwiotlbConfig>,
}

impl SwiotlbPool {
    pub fn new(cfg: Option<SwiotlbConfig>) -> SwiotlbPool {
        SwiotlbPool { cfg }
    }

    /// Models the slot search of `swiotlb_tbl_map_single` (stub: always -ENOMEM).
    pub fn alloc(
        &mut self,
        _orig: u64,
        _len: u64,
        _alloc_align_mask: u64,
        _min_align_mask: u64,
    ) -> BounceAlloc {
        BounceAlloc {
            ret: -errno::ENOMEM,
            slot: 0,
            not_modelled: self.cfg.is_some(),
        }
    }

    /// Models `swiotlb_release_slots` (stub: nothing is ever allocated). Returns whether the
    /// call touched a pool this stub does not model.
    pub fn free(&mut self, _slot: u64, _len: u64) -> bool {
        self.cfg.is_some()
    }

    /// Models `swiotlb_find_pool`: is `phys` inside the pool's memory?
    pub fn contains(&self, phys: u64) -> bool {
        self.cfg.is_some_and(|c| {
            let end = u128::from(c.base) + (u128::from(c.nslabs) << SLOT_SHIFT);
            phys >= c.base && u128::from(phys) < end
        })
    }

    /// The original address recorded for the live bounce byte at `phys`, or 0 (stub: no byte
    /// is ever live).
    pub fn orig(&self, _phys: u64) -> u64 {
        0
    }

    /// Live allocations, (slot, len) (stub: none).
    pub fn live(&self) -> Vec<(u64, u64)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_pool_refuses_and_knows_its_range() {
        let mut none = SwiotlbPool::new(None);
        let a = none.alloc(0x1000, 0x200, 0xfff, 0xfff);
        assert_eq!((a.ret, a.not_modelled), (-12, false));
        assert!(!none.contains(0));
        let mut pool = SwiotlbPool::new(Some(SwiotlbConfig {
            base: 0x8000_0000,
            nslabs: 512,
            nareas: 1,
        }));
        let a = pool.alloc(0x1000, 0x200, 0xfff, 0xfff);
        assert_eq!((a.ret, a.not_modelled), (-12, true));
        // 512 slots of 2 KiB: [0x8000_0000, 0x8010_0000).
        assert!(pool.contains(0x8000_0000) && pool.contains(0x800f_ffff));
        assert!(!pool.contains(0x8010_0000) && !pool.contains(0x7fff_ffff));
        assert!(pool.live().is_empty());
    }
}
