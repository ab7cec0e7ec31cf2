//! Machine-level tests: every expected value below was worked out by hand from the Linux 7.3
//! source paths named in the module docs, not taken from a run.

use super::*;
use dmaconf_platform::{PgtableBackend, RegionKind};

const RW: Prot = Prot(3);
const R: Prot = Prot(1);

fn facts(domain: DomainType, backend: PgtableBackend) -> PlatformFacts {
    PlatformFacts {
        domain,
        backend,
        nr_cpus: 4,
        ..PlatformFacts::default()
    }
}

fn machine(backend: PgtableBackend, needs_sync_map: bool) -> Machine {
    Machine::new(MachineConfig {
        facts: facts(DomainType::Dma, backend),
        reserved: vec![Region {
            start: 0xfee0_0000,
            end: 0xfeef_ffff,
            kind: RegionKind::Msi,
        }],
        needs_sync_map,
        oas_bits: 46,
        swiotlb: None,
    })
}

fn vtd() -> Machine {
    machine(PgtableBackend::Iommupt, false)
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::name).collect()
}

#[test]
fn platform_reads_record_nothing() {
    let mut m = vtd();
    m.set_cpu(3);
    assert_eq!(m.current_cpu(), 3);
    assert_eq!(m.reserved_region(0).map(|r| r.start), Some(0xfee0_0000));
    assert_eq!(m.reserved_region(1), None);
    assert_eq!(m.facts().nr_cpus, 4);
    assert_eq!(m.iova_to_phys(0x1000), 0);
    assert!(!m.is_bounce(0x1000));
    assert_eq!(m.bounce_orig(0x1000), 0);
    assert!(m.take_events().is_empty());
}

#[test]
fn successful_map_records_one_event_and_no_iotlb_work() {
    let mut m = vtd();
    assert_eq!(m.iommu_map(0x10_0000, 0x8000_0000, 0x2000, Prot(7)), 0);
    assert_eq!(
        m.take_events(),
        vec![Event::IommuMap {
            iova: 0x10_0000,
            phys: 0x8000_0000,
            len: 0x2000,
            prot: 7,
            ret: 0
        }]
    );
    assert_eq!(m.iova_to_phys(0x10_1abc), 0x8000_1abc);
    assert_eq!(
        m.mappings(),
        vec![Mapping {
            iova: 0x10_0000,
            phys: 0x8000_0000,
            len: 0x2000,
            prot: 7
        }]
    );
}

#[test]
fn mappings_coalesce_only_runs_contiguous_in_both_spaces_with_equal_prot() {
    let mut m = vtd();
    m.iommu_map(0x1000, 0xa000, 0x1000, RW);
    m.iommu_map(0x2000, 0xb000, 0x1000, RW); // continues both: merges
    m.iommu_map(0x3000, 0xd000, 0x1000, RW); // phys jumps
    m.iommu_map(0x4000, 0xe000, 0x1000, R); // prot differs
    assert_eq!(
        m.mappings(),
        vec![
            Mapping {
                iova: 0x1000,
                phys: 0xa000,
                len: 0x2000,
                prot: 3
            },
            Mapping {
                iova: 0x3000,
                phys: 0xd000,
                len: 0x1000,
                prot: 3
            },
            Mapping {
                iova: 0x4000,
                phys: 0xe000,
                len: 0x1000,
                prot: 1
            },
        ]
    );
    assert_eq!(m.ptes().len(), 4);
}

#[test]
fn page_sizes_4k_2m_1g_through_the_platform() {
    let mut m = vtd();
    assert_eq!(m.iommu_map(0x3fdf_f000, 0x3fdf_f000, 0x4020_2000, RW), 0);
    let sizes: Vec<(u64, u64)> = m.ptes().into_iter().map(|(i, p)| (i, p.size)).collect();
    assert_eq!(
        sizes,
        vec![
            (0x3fdf_f000, 0x1000),
            (0x3fe0_0000, 0x20_0000),
            (0x4000_0000, 0x4000_0000),
            (0x8000_0000, 0x1000),
        ]
    );
    // One run: contiguous in iova and phys, same prot.
    assert_eq!(m.mappings().len(), 1);
}

#[test]
fn iommupt_no_access_warns_then_maps_then_rolls_back_nothing() {
    let mut m = vtd();
    // prot 0x4 (CACHE alone): DMA_NONE's prot.
    assert_eq!(m.iommu_map(0x1000, 0x1000, 0x1000, Prot(4)), -22);
    assert_eq!(
        m.take_events(),
        vec![
            Event::Warn {
                code: "map_no_access"
            },
            Event::IommuMap {
                iova: 0x1000,
                phys: 0x1000,
                len: 0x1000,
                prot: 4,
                ret: -22
            },
            Event::IommuUnmap {
                iova: 0x1000,
                len: 0,
                unmapped: 0
            },
        ]
    );
}

#[test]
fn arm_no_access_is_einval_without_warn() {
    let mut m = machine(PgtableBackend::IoPgtableArm, false);
    assert_eq!(m.iommu_map(0x1000, 0x1000, 0x1000, Prot(4)), -22);
    assert_eq!(names(&m.take_events()), ["iommu.map", "iommu.unmap"]);
    assert_eq!(m.iommu_map(0x1000, 0x1000, 0x1800, RW), -22);
    assert_eq!(m.iommu_map(0x1000, 0x1000, 0x1000, RW), 0);
    assert_eq!(m.iommu_map(0x1000, 0x2000, 0x1000, RW), -17);
    // iommupt's codes for the same calls.
    let mut v = vtd();
    assert_eq!(v.iommu_map(0x1000, 0x1000, 0x1800, RW), -6);
    assert_eq!(v.iommu_map(0x1000, 1 << 46, 0x1000, RW), -34);
    assert_eq!(v.iommu_map(0x1000, 0x1000, 0x1000, RW), 0);
    assert_eq!(v.iommu_map(0x1000, 0x2000, 0x1000, RW), -98);
}

#[test]
fn partial_failure_rolls_back_with_unmap_and_sync() {
    let mut m = vtd();
    m.iommu_map(0x3000, 0x9_0000, 0x1000, RW);
    m.take_events();
    // 0x1000 and 0x2000 go in, 0x3000 is taken: -EADDRINUSE after 0x2000 bytes.
    assert_eq!(m.iommu_map(0x1000, 0x5_1000, 0x3000, RW), -98);
    assert_eq!(
        m.take_events(),
        vec![
            Event::IommuMap {
                iova: 0x1000,
                phys: 0x5_1000,
                len: 0x3000,
                prot: 3,
                ret: -98
            },
            Event::IommuUnmap {
                iova: 0x1000,
                len: 0x2000,
                unmapped: 0x2000
            },
            Event::IotlbSync {
                iova: 0x1000,
                len: 0x2000
            },
        ]
    );
    // Only the older mapping is left, and the rollback left nothing stale behind.
    assert_eq!(
        m.mappings(),
        vec![Mapping {
            iova: 0x3000,
            phys: 0x9_0000,
            len: 0x1000,
            prot: 3
        }]
    );
    assert!(m.stale_translations().is_empty());
}

#[test]
fn arm_partial_failure_rolls_back_whole_map_pages_runs() {
    let mut m = machine(PgtableBackend::IoPgtableArm, false);
    m.iommu_map(0x20_1000, 0x9_0000, 0x1000, RW);
    m.take_events();
    // Run 1: 0x1fe000..0x200000 (ends its table) succeeds; run 2 meets 0x201000: -EEXIST,
    // with arm_lpae_init_pte's WARN.
    assert_eq!(m.iommu_map(0x1f_e000, 0x5_0000, 0x4000, RW), -17);
    assert_eq!(
        m.take_events(),
        vec![
            Event::Warn { code: "map_exists" },
            Event::IommuMap {
                iova: 0x1f_e000,
                phys: 0x5_0000,
                len: 0x4000,
                prot: 3,
                ret: -17
            },
            Event::IommuUnmap {
                iova: 0x1f_e000,
                len: 0x2000,
                unmapped: 0x2000
            },
            Event::IotlbSync {
                iova: 0x1f_e000,
                len: 0x2000
            },
        ]
    );
    assert_eq!(m.ptes().len(), 1);
}

#[test]
fn unmap_stops_at_the_first_hole() {
    let mut m = vtd();
    m.iommu_map(0x1000, 0xa000, 0x2000, RW);
    m.iommu_map(0x4000, 0xd000, 0x1000, RW);
    m.take_events();
    assert_eq!(m.iommu_unmap(0x1000, 0x4000), 0x2000);
    assert_eq!(
        m.take_events(),
        vec![Event::IommuUnmap {
            iova: 0x1000,
            len: 0x4000,
            unmapped: 0x2000
        }]
    );
    assert_eq!(
        m.mappings(),
        vec![Mapping {
            iova: 0x4000,
            phys: 0xd000,
            len: 0x1000,
            prot: 3
        }]
    );
    assert_eq!(m.stale_translations(), vec![(0x1000, 0x2000)]);
}

#[test]
fn stale_translation_window_closed_by_iotlb_sync() {
    let mut m = vtd();
    m.mem_write(0x8_0000, b"old data");
    m.iommu_map(0x1000, 0x8_0000, 0x1000, RW);
    assert_eq!(m.iommu_unmap(0x1000, 0x1000), 0x1000);
    assert_eq!(m.iova_to_phys(0x1000), 0);
    // Unmapped but not invalidated: the device still reaches the old page.
    let a = m.device_read(0x1000, 8);
    assert_eq!(a.data.as_deref(), Some(&b"old data"[..]));
    assert_eq!(a.hazards, vec![Hazard::StaleTranslation { iova: 0x1000 }]);
    assert_eq!(a.fault, None);
    assert_eq!(m.stale_translations(), vec![(0x1000, 0x1000)]);
    // A sync of another range changes nothing; one covering it closes the window.
    m.iotlb_sync(0x5000, 0x1000);
    assert_eq!(m.stale_translations(), vec![(0x1000, 0x1000)]);
    m.iotlb_sync(0x1000, 0x1000);
    assert!(m.stale_translations().is_empty());
    let a = m.device_read(0x1000, 8);
    assert_eq!(a.data, None);
    assert_eq!(
        a.fault,
        Some(Fault {
            iova: 0x1000,
            reason: FaultReason::Unmapped
        })
    );
    assert!(a.hazards.is_empty());
}

#[test]
fn flush_iotlb_all_closes_every_stale_window() {
    let mut m = vtd();
    m.iommu_map(0x1000, 0x8_0000, 0x1000, RW);
    m.iommu_map(0x9000, 0x9_0000, 0x1000, RW);
    m.iommu_unmap(0x1000, 0x1000);
    m.iommu_unmap(0x9000, 0x1000);
    assert_eq!(
        m.stale_translations(),
        vec![(0x1000, 0x1000), (0x9000, 0x1000)]
    );
    m.flush_iotlb_all();
    assert!(m.stale_translations().is_empty());
    assert_eq!(names(&m.take_events()).last(), Some(&"iotlb.flush_all"));
}

#[test]
fn remap_before_invalidation_is_a_stale_hazard() {
    let mut m = vtd();
    m.mem_write(0xb_0000, b"new");
    m.iommu_map(0x1000, 0xa_0000, 0x1000, RW);
    m.iommu_unmap(0x1000, 0x1000);
    m.iommu_map(0x1000, 0xb_0000, 0x1000, RW);
    // The live PTE is used, but the device may still hold the old translation.
    let a = m.device_read(0x1000, 3);
    assert_eq!(a.data.as_deref(), Some(&b"new"[..]));
    assert_eq!(a.hazards, vec![Hazard::StaleTranslation { iova: 0x1000 }]);
    m.iotlb_sync(0x1000, 0x1000);
    assert!(m.device_read(0x1000, 3).hazards.is_empty());
}

#[test]
fn unsynced_window_closed_by_iotlb_sync_map() {
    let mut m = machine(PgtableBackend::Iommupt, true);
    m.mem_write(0x8_0000, &[1, 2, 3, 4]);
    m.iommu_map(0x1000, 0x8_0000, 0x2000, RW);
    assert_eq!(
        m.unsynced_translations(),
        vec![(0x1000, 0x1000), (0x2000, 0x1000)]
    );
    // Both granules are unsynced: one hazard for the run, at the first byte.
    let a = m.device_read(0x1ffe, 4);
    assert_eq!(a.data, Some(vec![0, 0, 0, 0]));
    assert_eq!(
        a.hazards,
        vec![Hazard::UnsyncedTranslation { iova: 0x1ffe }]
    );
    let a = m.device_read(0x1000, 4);
    assert_eq!(a.data, Some(vec![1, 2, 3, 4]));
    assert_eq!(m.iotlb_sync_map(0x1000, 0x1000), 0);
    assert_eq!(m.unsynced_translations(), vec![(0x2000, 0x1000)]);
    assert!(m.device_read(0x1000, 4).hazards.is_empty());
    // The granule at 0x2000 is still unsynced; the hazard names its first byte touched.
    assert_eq!(
        m.device_read(0x1ffe, 4).hazards,
        vec![Hazard::UnsyncedTranslation { iova: 0x2000 }]
    );
    assert_eq!(m.iotlb_sync_map(0x2000, 0x1000), 0);
    assert!(m.device_read(0x1000, 0x2000).hazards.is_empty());
    assert_eq!(
        m.take_events().last(),
        Some(&Event::IotlbSyncMap {
            iova: 0x2000,
            len: 0x1000,
            ret: 0
        })
    );
}

#[test]
fn without_needs_sync_map_new_ptes_are_visible_at_once() {
    let mut m = vtd();
    m.iommu_map(0x1000, 0x8_0000, 0x1000, RW);
    assert!(m.unsynced_translations().is_empty());
    assert!(m.device_read(0x1000, 1).hazards.is_empty());
}

#[test]
fn device_faults_unmapped_and_permission() {
    let mut m = vtd();
    m.mem_write(0x8_0000, &[7; 16]);
    m.iommu_map(0x1000, 0x8_0000, 0x1000, R);
    m.iommu_map(0x2000, 0x9_0000, 0x1000, RW);
    // Read-only page: reads work, writes fault with nothing written.
    assert_eq!(m.device_read(0x1000, 2).data, Some(vec![7, 7]));
    let w = m.device_write(0x1008, &[1, 2]);
    assert_eq!(
        w.fault,
        Some(Fault {
            iova: 0x1008,
            reason: FaultReason::Permission
        })
    );
    assert_eq!(m.mem_read(0x8_0008, 2), vec![7, 7]);
    // A write spanning a writable page and an unmapped one: faults at 0x3000, writes nothing.
    let w = m.device_write(0x2ffe, &[5, 5, 5, 5]);
    assert_eq!(
        w.fault,
        Some(Fault {
            iova: 0x3000,
            reason: FaultReason::Unmapped
        })
    );
    assert_eq!(m.mem_read(0x9_0ffe, 2), vec![0, 0]);
    // A read spanning the read-only page and the writable one works (both have READ).
    m.mem_write(0x8_0ffe, &[6, 6]);
    m.mem_write(0x9_0000, &[8, 8]);
    assert_eq!(m.device_read(0x1ffe, 4).data, Some(vec![6, 6, 8, 8]));
    // A write-only page refuses reads.
    m.iommu_map(0x4000, 0xa_0000, 0x1000, Prot(2));
    let r = m.device_read(0x4000, 1);
    assert_eq!(
        (r.data, r.fault),
        (
            None,
            Some(Fault {
                iova: 0x4000,
                reason: FaultReason::Permission
            })
        )
    );
    // A write that succeeds lands in memory through the translation.
    assert_eq!(m.device_write(0x4010, &[9]).fault, None);
    assert_eq!(m.mem_read(0xa_0010, 1), vec![9]);
}

/// PROT-01: on a format that cannot express write-only (io-pgtable-arm stage 1,
/// `arm_lpae_prot_to_pte`), a WRITE-only PTE is readable; a READ-only one still refuses writes.
#[test]
fn write_only_pte_readable_where_format_cannot_express_it() {
    let mut f = facts(DomainType::Dma, PgtableBackend::IoPgtableArm);
    f.write_only_pte = false;
    let mut m = Machine::new(MachineConfig {
        facts: f,
        reserved: vec![],
        needs_sync_map: false,
        oas_bits: 48,
        swiotlb: None,
    });
    m.mem_write(0xa_0000, &[4; 4]);
    m.iommu_map(0x4000, 0xa_0000, 0x1000, Prot(2));
    let r = m.device_read(0x4000, 2);
    assert_eq!((r.data, r.fault), (Some(vec![4, 4]), None));
    m.iommu_map(0x5000, 0xb_0000, 0x1000, R);
    assert_eq!(
        m.device_write(0x5000, &[1]).fault.map(|f| f.reason),
        Some(FaultReason::Permission)
    );
}

#[test]
fn direct_device_access_and_outside_mask() {
    let mut f = facts(DomainType::None, PgtableBackend::Iommupt);
    f.dma_mask = 0xffff_ffff;
    let mut m = Machine::new(MachineConfig {
        facts: f,
        reserved: Vec::new(),
        needs_sync_map: false,
        oas_bits: 46,
        swiotlb: None,
    });
    m.mem_write(0xffff_fff0, &[1, 2, 3]);
    let a = m.device_read(0xffff_fff0, 3);
    assert_eq!((a.data, a.hazards), (Some(vec![1, 2, 3]), vec![]));
    let a = m.device_read(0xffff_fff0, 0x20);
    assert_eq!(a.data, None);
    assert_eq!(a.fault, None);
    assert_eq!(
        a.hazards,
        vec![Hazard::OutsideMask {
            addr: 0x1_0000_0000
        }]
    );
    let w = m.device_write(0x1_0000_0000, &[1]);
    assert_eq!(
        w.hazards,
        vec![Hazard::OutsideMask {
            addr: 0x1_0000_0000
        }]
    );
    assert_eq!(m.mem_read(0x1_0000_0000, 1), vec![0]);
    // bus_dma_limit below the mask wins (min_not_zero).
    let mut f2 = f;
    f2.bus_dma_limit = 0xfff_ffff;
    let mut m2 = Machine::new(MachineConfig {
        facts: f2,
        ..m.config().clone()
    });
    assert_eq!(
        m2.device_read(0x1000_0000, 1).hazards,
        vec![Hazard::OutsideMask { addr: 0x1000_0000 }]
    );
    // No page table behind a direct device.
    assert_eq!(m.iommu_map(0x1000, 0x1000, 0x1000, RW), -22);
    assert_eq!(m.iommu_unmap(0x1000, 0x1000), 0);
    assert!(m.mappings().is_empty());
}

#[test]
fn identity_domain_translates_one_to_one() {
    let m = Machine::new(MachineConfig {
        facts: facts(DomainType::Identity, PgtableBackend::Iommupt),
        reserved: Vec::new(),
        needs_sync_map: false,
        oas_bits: 46,
        swiotlb: None,
    });
    assert_eq!(m.iova_to_phys(0x1234_5678), 0x1234_5678);
}

#[test]
fn translated_access_above_the_mask_is_refused() {
    let mut f = facts(DomainType::DmaFq, PgtableBackend::Iommupt);
    f.dma_mask = 0xffff_ffff;
    let mut m = Machine::new(MachineConfig {
        facts: f,
        reserved: Vec::new(),
        needs_sync_map: false,
        oas_bits: 46,
        swiotlb: None,
    });
    m.iommu_map(0x1_0000_0000, 0x1000, 0x1000, RW);
    let a = m.device_read(0x1_0000_0000, 1);
    assert_eq!((a.data, a.fault), (None, None));
    assert_eq!(
        a.hazards,
        vec![Hazard::OutsideMask {
            addr: 0x1_0000_0000
        }]
    );
}

#[test]
fn arm_table_flush_is_recorded_and_closes_stale_windows() {
    let mut m = machine(PgtableBackend::IoPgtableArm, false);
    m.iommu_map(0x20_3000, 0x5000, 0x1000, RW);
    m.iommu_map(0x20_4000, 0x6000, 0x1000, RW);
    m.iommu_unmap(0x20_4000, 0x1000);
    assert_eq!(m.stale_translations(), vec![(0x20_4000, 0x1000)]);
    m.take_events();
    // A 2 MiB block over the table: the live leaf at 0x203000 is dropped and the walk flush
    // invalidates the whole block at once, so nothing is stale afterwards.
    assert_eq!(m.iommu_map(0x20_0000, 0x40_0000, 0x20_0000, RW), 0);
    assert_eq!(
        m.take_events(),
        vec![
            Event::IotlbTableFlush {
                iova: 0x20_0000,
                len: 0x20_0000
            },
            Event::IommuMap {
                iova: 0x20_0000,
                phys: 0x40_0000,
                len: 0x20_0000,
                prot: 3,
                ret: 0
            },
        ]
    );
    assert!(m.stale_translations().is_empty());
    assert_eq!(m.iova_to_phys(0x20_3000), 0x40_3000);
}

#[test]
fn cache_calls_are_recorded_and_non_coherent_data_is_flagged() {
    let mut m = vtd();
    m.sync_for_device(0x1000, 0x40, Dir::TO_DEVICE);
    m.sync_barrier();
    m.sync_for_cpu(0x1000, 0x40, Dir::FROM_DEVICE);
    assert_eq!(
        m.take_events(),
        vec![
            Event::CacheSyncForDevice {
                phys: 0x1000,
                len: 0x40,
                dir: "to_device"
            },
            Event::CacheBarrier,
            Event::CacheSyncForCpu {
                phys: 0x1000,
                len: 0x40,
                dir: "from_device"
            },
        ]
    );
    m.cpu_write(0x1000, &[1]);
    assert!(m.not_modelled().is_empty());
    // A non-coherent machine keeps the store in a dirty line: the CPU sees it, memory does
    // not, and the model is real (nothing flagged).
    let mut f = facts(DomainType::Identity, PgtableBackend::IoPgtableArm);
    f.coherent = false;
    f.arch = dmaconf_platform::Arch::Arm64;
    let mut nc = Machine::new(MachineConfig {
        facts: f,
        ..m.config().clone()
    });
    assert!(nc.cpu_write(0x1000, &[1]).is_empty());
    assert_eq!(nc.cpu_read(0x1000, 1).0, vec![1]);
    assert_eq!(nc.mem_read(0x1000, 1), vec![0]);
    let r = nc.device_read(0x1000, 1);
    assert_eq!(r.data, Some(vec![0]));
    assert_eq!(r.hazards, vec![Hazard::DirtyLineMissed { phys: 0x1000 }]);
    assert!(nc.not_modelled().is_empty());
}

#[test]
fn swiotlb_pool_and_bounce_copies() {
    let mut f = facts(DomainType::Dma, PgtableBackend::Iommupt);
    f.min_align_mask = 0xfff;
    let mut m = Machine::new(MachineConfig {
        facts: f,
        swiotlb: Some(SwiotlbConfig::linux(0x8000_0000, 512, 1, true, 4096)),
        ..vtd().config().clone()
    });
    let mut slot = 0xdead;
    // orig 0x1200, min_align_mask 0xfff: offset 0x200 (below a slot: no padding slot),
    // size ALIGN(0x400, 0x1000) = 0x1000, slot 0: the bounce is 0x8000_0200.
    assert_eq!(m.bounce_alloc(0x1200, 0x200, 0xfff, 0xfff, &mut slot), 0);
    assert_eq!(slot, 0x8000_0200);
    assert!(m.is_bounce(0x8000_0000));
    assert_eq!(m.live_bounce_slots(), vec![(0x8000_0200, 0x200)]);
    // Slot 0 shadows 0x1200 with 0x200 kept: byte 0x8000_0201 is orig 0x1201. The release
    // finds the allocation from the address and the device's min_align_mask, as Linux does.
    assert_eq!(m.bounce_orig(0x8000_0201), 0x1201);
    m.bounce_free(0x8000_0200, 0x200);
    assert!(m.live_bounce_slots().is_empty());
    m.mem_write(0x1200, b"abc");
    m.copy(0x8000_0200, 0x1200, 3);
    m.fill(0x8000_0203, 0, 0x1fd);
    m.warn(WarnCode::UNLINK_SHORT_UNMAP);
    assert_eq!(m.mem_read(0x8000_0200, 4), b"abc\0".to_vec());
    assert_eq!(
        m.take_events(),
        vec![
            Event::SwiotlbAlloc {
                orig: 0x1200,
                len: 0x200,
                align_mask: 0xfff,
                min_align_mask: 0xfff,
                slot: 0x8000_0200,
                ret: 0
            },
            Event::SwiotlbFree {
                slot: 0x8000_0200,
                len: 0x200
            },
            Event::BounceCopy {
                from: 0x1200,
                to: 0x8000_0200,
                len: 3
            },
            Event::BounceFill {
                to: 0x8000_0203,
                byte: 0,
                len: 0x1fd
            },
            Event::Warn {
                code: "unlink_short_unmap"
            },
        ]
    );
    assert!(m.not_modelled().is_empty());
    // Without a pool every request fails, as swiotlb_tbl_map_single does without one.
    let mut plain = vtd();
    assert_eq!(
        plain.bounce_alloc(0x1200, 0x200, 0xfff, 0xfff, &mut slot),
        -12
    );
    assert!(plain.not_modelled().is_empty());
}

#[test]
fn oversized_accesses_are_truncated_and_flagged() {
    let mut m = vtd();
    assert_eq!(m.cpu_read(u64::MAX, 2).0, vec![0]);
    assert_eq!(m.not_modelled(), vec![NOT_MODELLED_OVERSIZED]);
    m.fill(0, 0, u64::MAX);
    m.copy(0, 1 << 40, u64::MAX);
    assert_eq!(m.not_modelled(), vec![NOT_MODELLED_OVERSIZED]);
}

/// Edge values for addresses and lengths.
const EDGES: [u64; 14] = [
    0,
    1,
    0xfff,
    0x1000,
    0x1800,
    0x20_0000,
    0x1f_f000,
    0x4000_0000,
    (1 << 46) - 0x1000,
    1 << 46,
    1 << 63,
    u64::MAX - 0xfff,
    u64::MAX - 1,
    u64::MAX,
];

#[test]
fn any_input_sequence_keeps_the_machine_alive_and_consistent() {
    // xorshift64: deterministic, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for domain in [
        DomainType::None,
        DomainType::Identity,
        DomainType::Dma,
        DomainType::DmaFq,
    ] {
        for backend in [PgtableBackend::Iommupt, PgtableBackend::IoPgtableArm] {
            for needs_sync_map in [false, true] {
                let mut f = facts(domain, backend);
                f.aperture_end = u64::MAX;
                let mut m = Machine::new(MachineConfig {
                    facts: f,
                    reserved: Vec::new(),
                    needs_sync_map,
                    oas_bits: 64,
                    swiotlb: None,
                });
                for _ in 0..400 {
                    let mut pick = || {
                        let r = next();
                        if r & 1 == 0 {
                            EDGES[(r >> 1) as usize % EDGES.len()]
                        } else {
                            (r >> 8) & 0x3f_f000
                        }
                    };
                    let (a, b, c) = (pick(), pick(), pick() & 0x7f_ffff);
                    match next() % 9 {
                        0 => drop(m.iommu_map(a, b, c, Prot((next() % 8) as u32))),
                        1 => drop(m.iommu_unmap(a, c)),
                        2 => m.iotlb_sync(a, b),
                        3 => drop(m.iotlb_sync_map(a, b)),
                        4 => drop(m.device_read(a, c & 0x3fff)),
                        5 => drop(m.device_write(a, &[0xAB; 3])),
                        6 => m.copy(a, b, c & 0xffff),
                        7 => drop(m.iova_to_phys(a)),
                        _ => m.flush_iotlb_all(),
                    }
                }
                // Live PTEs never overlap.
                let ptes = m.ptes();
                for w in ptes.windows(2) {
                    assert!(u128::from(w[0].0) + u128::from(w[0].1.size) <= u128::from(w[1].0));
                }
                m.take_events();
            }
        }
    }
}

/// io-pgtable path: `__iommu_map_domain_pgtbl` refuses a misaligned request with -EINVAL and
/// its "unaligned" error print (`map_unaligned`), logged before the map event; the rollback
/// unmaps the 0 bytes mapped (spec/1-platform.md §1.5, order 1).
#[test]
fn io_pgtable_arm_misaligned_map_reports_map_unaligned() {
    let mut m = machine(PgtableBackend::IoPgtableArm, false);
    assert_eq!(m.iommu_map(0x1000, 0x7fff_ffc0, 0x1000, Prot(2)), -22);
    assert_eq!(
        m.take_events(),
        vec![
            Event::Warn {
                code: "map_unaligned"
            },
            Event::IommuMap {
                iova: 0x1000,
                phys: 0x7fff_ffc0,
                len: 0x1000,
                prot: 2,
                ret: -22
            },
            Event::IommuUnmap {
                iova: 0x1000,
                len: 0,
                unmapped: 0
            },
        ]
    );
    // iommupt refuses the same request with -ENXIO and no diagnostic.
    let mut m = vtd();
    assert_eq!(m.iommu_map(0x1000, 0x7fff_ffc0, 0x1000, Prot(2)), -6);
    assert_eq!(names(&m.take_events()), vec!["iommu.map", "iommu.unmap"]);
}

/// io-pgtable-arm WARNs on every empty entry its unmap meets: a two-page unmap of one mapped
/// page WARNs inside the run (`__arm_lpae_unmap` breaks) and again when the retry starts at the
/// hole; both before the `unmap` tracepoint. iommupt stops silently.
#[test]
fn arm_unmap_of_a_hole_warns_twice() {
    let mut m = machine(PgtableBackend::IoPgtableArm, false);
    m.iommu_map(0x1000, 0x9_0000, 0x1000, RW);
    m.take_events();
    assert_eq!(m.iommu_unmap(0x1000, 0x2000), 0x1000);
    assert_eq!(
        m.take_events(),
        vec![
            Event::Warn {
                code: "unmap_missing"
            },
            Event::Warn {
                code: "unmap_missing"
            },
            Event::IommuUnmap {
                iova: 0x1000,
                len: 0x2000,
                unmapped: 0x1000
            },
        ]
    );
    let mut pt = machine(PgtableBackend::Iommupt, false);
    pt.iommu_map(0x1000, 0x9_0000, 0x1000, RW);
    pt.take_events();
    assert_eq!(pt.iommu_unmap(0x1000, 0x2000), 0x1000);
    assert_eq!(pt.take_events().len(), 1);
}
