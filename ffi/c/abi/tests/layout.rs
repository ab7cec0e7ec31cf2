//! Every ABI struct's size, alignment and member offsets, snapshotted: a layout change is a
//! visible review item (and, for a published major, an ABI break: spec/8-c-abi.md).
//! Also checks that the constants the header publishes are the platform interface's own.

use std::fmt::Write;
use std::mem::{align_of, offset_of, size_of};

use dmaconf_c_abi::*;
use dmaconf_platform as platform;

macro_rules! layout {
    ($out:expr, $t:ident { $($f:ident),* $(,)? }) => {{
        writeln!($out, "struct {}: size {} align {}", stringify!($t), size_of::<$t>(), align_of::<$t>()).unwrap();
        $( writeln!($out, "  {:>4} {}", offset_of!($t, $f), stringify!($f)).unwrap(); )*
    }};
}

#[test]
fn struct_layouts() {
    let mut out = String::new();
    layout!(out, dmaconf_iova_state { addr, size });
    layout!(
        out,
        dmaconf_sg_entry {
            phys,
            len,
            dma_address,
            dma_len,
            flags,
            reserved
        }
    );
    layout!(
        out,
        dmaconf_region {
            start,
            end,
            kind,
            reserved
        }
    );
    layout!(
        out,
        dmaconf_facts {
            struct_size,
            arch,
            domain,
            backend,
            pgsize_bitmap,
            aperture_start,
            aperture_end,
            force_aperture,
            coherent,
            untrusted,
            pci,
            forcedac,
            swiotlb,
            dma_mask,
            bus_dma_limit,
            min_align_mask,
            cache_line,
            kmalloc_bounce,
            iommu_dma_config,
            nr_cpus,
            max_seg_size,
            msi_doorbell,
            seg_boundary_mask,
            swiotlb_force,
            reserved,
            dma_offset,
        }
    );
    layout!(
        out,
        dmaconf_host {
            struct_size,
            abi_major,
            abi_minor,
            reserved,
            facts,
            reserved_region,
            current_cpu,
            now_ns,
            iommu_map,
            iotlb_sync_map,
            iommu_unmap,
            iotlb_sync,
            flush_iotlb_all,
            iova_to_phys,
            sync_for_device,
            sync_for_cpu,
            sync_barrier,
            bounce_alloc,
            bounce_free,
            is_bounce,
            bounce_orig,
            copy,
            fill,
            p2p_type,
            p2p_bus_offset,
            warn,
        }
    );
    layout!(
        out,
        dmaconf_plugin {
            struct_size,
            abi_major,
            abi_minor,
            reserved,
            name,
            version,
            capabilities,
            create,
            destroy,
            probe,
            iova_try_alloc,
            iova_link,
            iova_sync,
            iova_unlink,
            iova_destroy,
            iova_free,
            use_iova,
            iova_size,
            map_phys,
            unmap_phys,
            sync_single_for_cpu,
            sync_single_for_device,
            map_sg,
            unmap_sg,
            need_unmap,
            need_sync,
            map_page_attrs,
            unmap_page_attrs,
            map_resource,
            unmap_resource,
            advance_time,
        }
    );
    writeln!(
        out,
        "DMACONF_PLUGIN_MIN_SIZE_V1 = {DMACONF_PLUGIN_MIN_SIZE_V1}"
    )
    .unwrap();
    insta::assert_snapshot!(out);
}

/// No implicit padding anywhere: each struct's size is the sum of its members' sizes, so the
/// C compiler and Rust agree without relying on padding rules.
#[test]
fn no_implicit_padding() {
    assert_eq!(size_of::<dmaconf_iova_state>(), 16);
    assert_eq!(size_of::<dmaconf_sg_entry>(), 4 * 8 + 2 * 4);
    assert_eq!(size_of::<dmaconf_region>(), 2 * 8 + 2 * 4);
    // 10 u64 members and 18 u32 members (minor 1 appended `write_only_pte` and a pad).
    assert_eq!(size_of::<dmaconf_facts>(), 10 * 8 + 18 * 4);
    assert_eq!(size_of::<dmaconf_host>(), 16 + 22 * size_of::<usize>());
    assert_eq!(
        size_of::<dmaconf_plugin>(),
        16 + 3 * 8 + 24 * size_of::<usize>()
    );
}

#[test]
fn constants_are_the_platform_interfaces() {
    use platform::{errno, Attrs, Dir, Prot, WarnCode};
    assert_eq!(DMACONF_IOVA_USE_SWIOTLB, platform::DMA_IOVA_USE_SWIOTLB);
    assert_eq!(DMACONF_MAPPING_ERROR, platform::DMA_MAPPING_ERROR);
    let dirs = [
        (DMACONF_DIR_BIDIRECTIONAL, Dir::BIDIRECTIONAL),
        (DMACONF_DIR_TO_DEVICE, Dir::TO_DEVICE),
        (DMACONF_DIR_FROM_DEVICE, Dir::FROM_DEVICE),
        (DMACONF_DIR_NONE, Dir::NONE),
    ];
    for (c, d) in dirs {
        assert_eq!(c, d.0, "{}", d.name());
    }
    let attrs = [
        DMACONF_ATTR_WEAK_ORDERING,
        DMACONF_ATTR_WRITE_COMBINE,
        DMACONF_ATTR_NO_KERNEL_MAPPING,
        DMACONF_ATTR_SKIP_CPU_SYNC,
        DMACONF_ATTR_FORCE_CONTIGUOUS,
        DMACONF_ATTR_ALLOC_SINGLE_PAGES,
        DMACONF_ATTR_NO_WARN,
        DMACONF_ATTR_PRIVILEGED,
        DMACONF_ATTR_MMIO,
        DMACONF_ATTR_DEBUGGING_IGNORE_CACHELINES,
        DMACONF_ATTR_REQUIRE_COHERENT,
        DMACONF_ATTR_CC_SHARED,
    ];
    let platform_attrs: Vec<u64> = Attrs::NAMES.iter().map(|(_, a)| a.0).collect();
    assert_eq!(attrs.to_vec(), platform_attrs);
    let prots = [
        (DMACONF_PROT_READ, Prot::READ),
        (DMACONF_PROT_WRITE, Prot::WRITE),
        (DMACONF_PROT_CACHE, Prot::CACHE),
        (DMACONF_PROT_NOEXEC, Prot::NOEXEC),
        (DMACONF_PROT_MMIO, Prot::MMIO),
        (DMACONF_PROT_PRIV, Prot::PRIV),
    ];
    for (c, p) in prots {
        assert_eq!(c, p.0);
    }
    let warns = [
        DMACONF_WARN_TRY_ALLOC_ZERO_SIZE,
        DMACONF_WARN_TRY_ALLOC_SIZE_FLAG_BIT,
        DMACONF_WARN_LINK_UNALIGNED_AT_OFFSET,
        DMACONF_WARN_LINK_COHERENT_AFTER_BOUNCE,
        DMACONF_WARN_UNLINK_SHORT_UNMAP,
        DMACONF_WARN_UNLINK_UNTRANSLATED,
        DMACONF_WARN_MAP_NO_ACCESS,
        DMACONF_WARN_MAP_UNALIGNED,
        DMACONF_WARN_STREAM_MIN_ALIGN_UNSUPPORTED,
        DMACONF_WARN_STREAM_UNMAP_UNTRANSLATED,
        DMACONF_WARN_STREAM_UNMAP_SHORT,
        DMACONF_WARN_DIRECT_OVERFLOW,
        DMACONF_WARN_MAP_EXISTS,
        DMACONF_WARN_MAP_OUT_OF_RANGE,
        DMACONF_WARN_UNMAP_MISSING,
        DMACONF_WARN_UNMAP_PARTIAL_LEAF,
    ];
    let platform_warns: Vec<u32> = WarnCode::ALL.iter().map(|(_, w)| w.0).collect();
    assert_eq!(warns.to_vec(), platform_warns);
    let p2p = [
        (DMACONF_P2P_UNKNOWN, platform::p2p::UNKNOWN),
        (DMACONF_P2P_NONE, platform::p2p::NONE),
        (DMACONF_P2P_NOT_SUPPORTED, platform::p2p::NOT_SUPPORTED),
        (DMACONF_P2P_BUS_ADDR, platform::p2p::BUS_ADDR),
        (
            DMACONF_P2P_THRU_HOST_BRIDGE,
            platform::p2p::THRU_HOST_BRIDGE,
        ),
    ];
    for (c, p) in p2p {
        assert_eq!(c, p);
    }
    assert_eq!(DMACONF_SG_DMA_BUS_ADDRESS, platform::SG_DMA_BUS_ADDRESS);
    assert_eq!(DMACONF_SG_DMA_SWIOTLB, platform::SG_DMA_SWIOTLB);
    assert_eq!(DMACONF_ARCH_X86, platform::Arch::X86 as u32);
    assert_eq!(DMACONF_ARCH_ARM64, platform::Arch::Arm64 as u32);
    assert_eq!(DMACONF_ARCH_RISCV, platform::Arch::Riscv as u32);
    assert_eq!(DMACONF_ARCH_ARM, platform::Arch::Arm as u32);
    assert_eq!(DMACONF_DOMAIN_NONE, platform::DomainType::None as u32);
    assert_eq!(
        DMACONF_DOMAIN_IDENTITY,
        platform::DomainType::Identity as u32
    );
    assert_eq!(DMACONF_DOMAIN_DMA, platform::DomainType::Dma as u32);
    assert_eq!(DMACONF_DOMAIN_DMA_FQ, platform::DomainType::DmaFq as u32);
    assert_eq!(
        DMACONF_BACKEND_IOMMUPT,
        platform::PgtableBackend::Iommupt as u32
    );
    assert_eq!(
        DMACONF_BACKEND_IO_PGTABLE_ARM,
        platform::PgtableBackend::IoPgtableArm as u32
    );
    assert_eq!(
        DMACONF_REGION_PCI_WINDOW,
        platform::RegionKind::PciWindow as u32
    );
    assert_eq!(
        DMACONF_REGION_DMA_RANGE_GAP,
        platform::RegionKind::DmaRangeGap as u32
    );
    assert_eq!(DMACONF_REGION_MSI, platform::RegionKind::Msi as u32);
    assert_eq!(
        DMACONF_REGION_RESERVED,
        platform::RegionKind::Reserved as u32
    );
    assert_eq!(DMACONF_REGION_DIRECT, platform::RegionKind::Direct as u32);
    let errnos: Vec<(&str, i32)> = vec![
        ("EPERM", DMACONF_EPERM),
        ("EIO", DMACONF_EIO),
        ("ENXIO", DMACONF_ENXIO),
        ("ENOMEM", DMACONF_ENOMEM),
        ("EFAULT", DMACONF_EFAULT),
        ("EEXIST", DMACONF_EEXIST),
        ("EINVAL", DMACONF_EINVAL),
        ("ERANGE", DMACONF_ERANGE),
        ("EOVERFLOW", DMACONF_EOVERFLOW),
        ("EOPNOTSUPP", DMACONF_EOPNOTSUPP),
        ("EADDRINUSE", DMACONF_EADDRINUSE),
        ("EREMOTEIO", DMACONF_EREMOTEIO),
    ];
    assert_eq!(errnos, errno::NAMES.to_vec());
    assert_eq!(DMACONF_ENOENT, 2);
}
