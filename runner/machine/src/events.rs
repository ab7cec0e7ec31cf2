//! What the machine records: the ordered event log, the hazards it detects during CPU and
//! device accesses, and the IOMMU faults that stop a device access.
//!
//! Events are the machine's side of every platform call, so a vector can check what a DMA
//! layer did to the IOMMU, the caches and the bounce pool without trusting the layer itself.

use serde::Serialize;

/// One recorded platform effect. Serialised with an `event` tag holding the dotted name, then
/// the fields in the order listed (the engine compares them through [`Event::fields`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event")]
pub enum Event {
    /// One per `Platform::iommu_map` call. `len` is the length asked for (Linux's `map`
    /// tracepoint reports the bytes actually mapped instead; on success the two agree).
    #[serde(rename = "iommu.map")]
    IommuMap {
        iova: u64,
        phys: u64,
        len: u64,
        prot: u32,
        ret: i32,
    },
    /// One per `Platform::iommu_unmap` call, and one for the rollback inside every failed map
    /// (Linux calls `iommu_unmap` there even when nothing was mapped).
    #[serde(rename = "iommu.unmap")]
    IommuUnmap { iova: u64, len: u64, unmapped: u64 },
    /// `Platform::iotlb_sync_map`.
    #[serde(rename = "iotlb.sync_map")]
    IotlbSyncMap { iova: u64, len: u64, ret: i32 },
    /// `Platform::iotlb_sync`, and the strict sync that ends a map rollback.
    #[serde(rename = "iotlb.sync")]
    IotlbSync { iova: u64, len: u64 },
    /// `Platform::flush_iotlb_all`.
    #[serde(rename = "iotlb.flush_all")]
    IotlbFlushAll,
    /// An invalidation the page table issues by itself while it frees a lower-level table:
    /// iommupt's map syncs its gather when a large leaf replaced empty tables; io-pgtable-arm
    /// flushes walks when a block entry replaces a table (on map or on unmap). Not a platform
    /// call: the DMA layer did not ask for it, but the device sees its effect.
    #[serde(rename = "iotlb.table_flush")]
    IotlbTableFlush { iova: u64, len: u64 },
    #[serde(rename = "cache.sync_for_device")]
    CacheSyncForDevice {
        phys: u64,
        len: u64,
        dir: &'static str,
    },
    #[serde(rename = "cache.sync_for_cpu")]
    CacheSyncForCpu {
        phys: u64,
        len: u64,
        dir: &'static str,
    },
    #[serde(rename = "cache.barrier")]
    CacheBarrier,
    /// `Platform::bounce_alloc`; `slot` is 0 when `ret` is an error.
    #[serde(rename = "swiotlb.alloc")]
    SwiotlbAlloc {
        orig: u64,
        len: u64,
        align_mask: u64,
        min_align_mask: u64,
        slot: u64,
        ret: i32,
    },
    #[serde(rename = "swiotlb.free")]
    SwiotlbFree { slot: u64, len: u64 },
    /// `Platform::copy`: `len` bytes from `from` to `to`.
    #[serde(rename = "bounce.copy")]
    BounceCopy { from: u64, to: u64, len: u64 },
    /// `Platform::fill`.
    #[serde(rename = "bounce.fill")]
    BounceFill { to: u64, byte: u8, len: u64 },
    /// A WARN-class diagnostic, from the DMA layer (`Platform::warn`) or from the page table.
    #[serde(rename = "warn")]
    Warn { code: &'static str },
}

/// A field value of an event, for field-by-field comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue {
    U64(u64),
    I64(i64),
    Str(String),
}

impl Event {
    /// The dotted kind, as it appears in the `event` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Event::IommuMap { .. } => "iommu.map",
            Event::IommuUnmap { .. } => "iommu.unmap",
            Event::IotlbSyncMap { .. } => "iotlb.sync_map",
            Event::IotlbSync { .. } => "iotlb.sync",
            Event::IotlbFlushAll => "iotlb.flush_all",
            Event::IotlbTableFlush { .. } => "iotlb.table_flush",
            Event::CacheSyncForDevice { .. } => "cache.sync_for_device",
            Event::CacheSyncForCpu { .. } => "cache.sync_for_cpu",
            Event::CacheBarrier => "cache.barrier",
            Event::SwiotlbAlloc { .. } => "swiotlb.alloc",
            Event::SwiotlbFree { .. } => "swiotlb.free",
            Event::BounceCopy { .. } => "bounce.copy",
            Event::BounceFill { .. } => "bounce.fill",
            Event::Warn { .. } => "warn",
        }
    }

    /// The fields in serialisation order (the tag excluded).
    pub fn fields(&self) -> Vec<(&'static str, FieldValue)> {
        use FieldValue::{Str, I64, U64};
        match *self {
            Event::IommuMap {
                iova,
                phys,
                len,
                prot,
                ret,
            } => vec![
                ("iova", U64(iova)),
                ("phys", U64(phys)),
                ("len", U64(len)),
                ("prot", U64(prot.into())),
                ("ret", I64(ret.into())),
            ],
            Event::IommuUnmap {
                iova,
                len,
                unmapped,
            } => vec![
                ("iova", U64(iova)),
                ("len", U64(len)),
                ("unmapped", U64(unmapped)),
            ],
            Event::IotlbSyncMap { iova, len, ret } => vec![
                ("iova", U64(iova)),
                ("len", U64(len)),
                ("ret", I64(ret.into())),
            ],
            Event::IotlbSync { iova, len } | Event::IotlbTableFlush { iova, len } => {
                vec![("iova", U64(iova)), ("len", U64(len))]
            }
            Event::IotlbFlushAll | Event::CacheBarrier => Vec::new(),
            Event::CacheSyncForDevice { phys, len, dir }
            | Event::CacheSyncForCpu { phys, len, dir } => vec![
                ("phys", U64(phys)),
                ("len", U64(len)),
                ("dir", Str(dir.to_string())),
            ],
            Event::SwiotlbAlloc {
                orig,
                len,
                align_mask,
                min_align_mask,
                slot,
                ret,
            } => vec![
                ("orig", U64(orig)),
                ("len", U64(len)),
                ("align_mask", U64(align_mask)),
                ("min_align_mask", U64(min_align_mask)),
                ("slot", U64(slot)),
                ("ret", I64(ret.into())),
            ],
            Event::SwiotlbFree { slot, len } => vec![("slot", U64(slot)), ("len", U64(len))],
            Event::BounceCopy { from, to, len } => {
                vec![("from", U64(from)), ("to", U64(to)), ("len", U64(len))]
            }
            Event::BounceFill { to, byte, len } => vec![
                ("to", U64(to)),
                ("byte", U64(byte.into())),
                ("len", U64(len)),
            ],
            Event::Warn { code } => vec![("code", Str(code.to_string()))],
        }
    }
}

/// Something a CPU or device access did that the rules promise will not happen on a correct
/// DMA layer. Reported with the access, never stopping it (a fault stops an access).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "hazard", rename_all = "snake_case")]
pub enum Hazard {
    /// The device used a PTE that `iotlb_sync_map` has not yet made visible (on machines that
    /// need it, e.g. VT-d in caching mode, the real device would fault or see an old entry).
    UnsyncedTranslation { iova: u64 },
    /// The device used a translation already unmapped but not yet invalidated, or a live PTE
    /// that a not-yet-invalidated older translation of the same IOVA shadows.
    StaleTranslation { iova: u64 },
    /// A device access beyond `min_not_zero(dma_mask, bus_dma_limit)`; `addr` is the first
    /// byte of the access beyond the limit. Nothing is transferred.
    OutsideMask { addr: u64 },
    /// (cache model, later) The device read memory whose newest value sits dirty in a CPU line.
    DirtyLineMissed { phys: u64 },
    /// (cache model, later) The CPU read a stale line after a device write.
    StaleCpuLine { phys: u64 },
    /// (cache model, later) An invalidation threw away a dirty line.
    DirtyLineDiscarded { phys: u64 },
}

impl Hazard {
    /// The snake_case kind, as it appears in the `hazard` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Hazard::UnsyncedTranslation { .. } => "unsynced_translation",
            Hazard::StaleTranslation { .. } => "stale_translation",
            Hazard::OutsideMask { .. } => "outside_mask",
            Hazard::DirtyLineMissed { .. } => "dirty_line_missed",
            Hazard::StaleCpuLine { .. } => "stale_cpu_line",
            Hazard::DirtyLineDiscarded { .. } => "dirty_line_discarded",
        }
    }
}

/// Why the IOMMU refused a device access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultReason {
    /// No translation, live or stale, for the address.
    Unmapped,
    /// A translation exists but lacks `IOMMU_READ` (device read) or `IOMMU_WRITE` (device
    /// write).
    Permission,
}

/// An IOMMU fault: the first byte address of the granule the device could not use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub iova: u64,
    pub reason: FaultReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_dotted_tag_and_fields_in_order() {
        let e = Event::IommuMap {
            iova: 0x1000,
            phys: 0x2000,
            len: 0x1000,
            prot: 7,
            ret: -98,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"iommu.map","iova":4096,"phys":8192,"len":4096,"prot":7,"ret":-98}"#
        );
        assert_eq!(
            serde_json::to_string(&Event::IotlbFlushAll).unwrap(),
            r#"{"event":"iotlb.flush_all"}"#
        );
        let names: Vec<_> = e.fields().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["iova", "phys", "len", "prot", "ret"]);
        assert_eq!(e.fields()[4].1, FieldValue::I64(-98));
        let sync = Event::CacheSyncForCpu {
            phys: 1,
            len: 2,
            dir: "from_device",
        };
        assert_eq!(sync.name(), "cache.sync_for_cpu");
        assert_eq!(
            sync.fields()[2],
            ("dir", FieldValue::Str("from_device".into()))
        );
    }

    #[test]
    fn hazards_and_faults_serialise_snake_case() {
        let h = Hazard::StaleTranslation { iova: 16 };
        assert_eq!(h.name(), "stale_translation");
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"hazard":"stale_translation","iova":16}"#
        );
        let f = Fault {
            iova: 5,
            reason: FaultReason::Permission,
        };
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"iova":5,"reason":"permission"}"#
        );
    }
}
