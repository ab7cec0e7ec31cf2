//! CPU caches.
//!
//! For now a stub: cache maintenance calls are recorded as events and change nothing, and CPU
//! and device data go straight to memory. That is exact for a coherent device; for a
//! non-coherent one the line model (clean / dirty / stale lines, lowered per architecture as
//! `arch_sync_dma_for_device` / `arch_sync_dma_for_cpu` do) is still to come, so every data
//! access on such a machine is flagged as not modelled.

use dmaconf_platform::Dir;

use crate::events::Event;

/// The label added to `Machine::not_modelled` when a data result depends on the missing model.
pub const NOT_MODELLED: &str = "cpu cache model";

/// The CPU caches of the machine (stub).
#[derive(Clone, Debug)]
pub struct CpuCaches {
    coherent: bool,
}

impl CpuCaches {
    pub fn new(coherent: bool) -> CpuCaches {
        CpuCaches { coherent }
    }

    /// A CPU or device data access is about to happen. Returns the not-modelled label when the
    /// result would depend on cache state this stub does not keep.
    pub fn data_access(&self) -> Option<&'static str> {
        (!self.coherent).then_some(NOT_MODELLED)
    }

    /// Models `arch_sync_dma_for_device` (stub: recorded only).
    pub fn sync_for_device(&mut self, phys: u64, len: u64, dir: Dir) -> Event {
        Event::CacheSyncForDevice {
            phys,
            len,
            dir: dir.name(),
        }
    }

    /// Models `arch_sync_dma_for_cpu` (stub: recorded only).
    pub fn sync_for_cpu(&mut self, phys: u64, len: u64, dir: Dir) -> Event {
        Event::CacheSyncForCpu {
            phys,
            len,
            dir: dir.name(),
        }
    }

    /// Models `arch_sync_dma_flush` (stub: recorded only).
    pub fn barrier(&mut self) -> Event {
        Event::CacheBarrier
    }
}
