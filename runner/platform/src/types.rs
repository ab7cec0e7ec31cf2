//! Plain values that cross the platform line. Numbering follows Linux so that a C or kernel
//! implementation can pass its own constants through unchanged.

/// `DMA_IOVA_USE_SWIOTLB`: bit 63 of the state's size word (STATE-04).
pub const DMA_IOVA_USE_SWIOTLB: u64 = 1 << 63;
/// `DMA_MAPPING_ERROR`.
pub const DMA_MAPPING_ERROR: u64 = u64::MAX;

/// `struct dma_iova_state`: owned by the caller, filled by the implementation.
/// `size` is Linux's `__size`: the caller's size with [`DMA_IOVA_USE_SWIOTLB`] as a flag.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IovaState {
    pub addr: u64,
    pub size: u64,
}

/// `enum dma_data_direction`, Linux numbering. A transparent `u32` so an out-of-range value a
/// vector passes on purpose reaches the implementation unchanged.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Dir(pub u32);

impl Dir {
    pub const BIDIRECTIONAL: Dir = Dir(0);
    pub const TO_DEVICE: Dir = Dir(1);
    pub const FROM_DEVICE: Dir = Dir(2);
    pub const NONE: Dir = Dir(3);

    /// The vector spelling of a direction.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "bidirectional",
            1 => "to_device",
            2 => "from_device",
            3 => "none",
            _ => "invalid",
        }
    }

    pub fn from_name(name: &str) -> Option<Dir> {
        [
            Dir::BIDIRECTIONAL,
            Dir::TO_DEVICE,
            Dir::FROM_DEVICE,
            Dir::NONE,
        ]
        .into_iter()
        .find(|d| d.name() == name)
    }
}

/// `DMA_ATTR_*` bit set, Linux bit numbers.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Attrs(pub u64);

impl Attrs {
    pub const WEAK_ORDERING: Attrs = Attrs(1 << 1);
    pub const WRITE_COMBINE: Attrs = Attrs(1 << 2);
    pub const NO_KERNEL_MAPPING: Attrs = Attrs(1 << 4);
    pub const SKIP_CPU_SYNC: Attrs = Attrs(1 << 5);
    pub const FORCE_CONTIGUOUS: Attrs = Attrs(1 << 6);
    pub const ALLOC_SINGLE_PAGES: Attrs = Attrs(1 << 7);
    pub const NO_WARN: Attrs = Attrs(1 << 8);
    pub const PRIVILEGED: Attrs = Attrs(1 << 9);
    pub const MMIO: Attrs = Attrs(1 << 10);
    pub const DEBUGGING_IGNORE_CACHELINES: Attrs = Attrs(1 << 11);
    pub const REQUIRE_COHERENT: Attrs = Attrs(1 << 12);
    pub const CC_SHARED: Attrs = Attrs(1 << 13);

    /// Vector spellings, in bit order.
    pub const NAMES: &'static [(&'static str, Attrs)] = &[
        ("weak_ordering", Attrs::WEAK_ORDERING),
        ("write_combine", Attrs::WRITE_COMBINE),
        ("no_kernel_mapping", Attrs::NO_KERNEL_MAPPING),
        ("skip_cpu_sync", Attrs::SKIP_CPU_SYNC),
        ("force_contiguous", Attrs::FORCE_CONTIGUOUS),
        ("alloc_single_pages", Attrs::ALLOC_SINGLE_PAGES),
        ("no_warn", Attrs::NO_WARN),
        ("privileged", Attrs::PRIVILEGED),
        ("mmio", Attrs::MMIO),
        (
            "debugging_ignore_cachelines",
            Attrs::DEBUGGING_IGNORE_CACHELINES,
        ),
        ("require_coherent", Attrs::REQUIRE_COHERENT),
        ("cc_shared", Attrs::CC_SHARED),
    ];

    pub fn contains(self, other: Attrs) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersects(self, other: Attrs) -> bool {
        self.0 & other.0 != 0
    }

    pub fn from_name(name: &str) -> Option<Attrs> {
        Attrs::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
    }
}

impl std::ops::BitOr for Attrs {
    type Output = Attrs;
    fn bitor(self, rhs: Attrs) -> Attrs {
        Attrs(self.0 | rhs.0)
    }
}

/// IOMMU protection bits (`IOMMU_READ` ...), Linux values.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Prot(pub u32);

impl Prot {
    pub const READ: Prot = Prot(1 << 0);
    pub const WRITE: Prot = Prot(1 << 1);
    pub const CACHE: Prot = Prot(1 << 2);
    pub const NOEXEC: Prot = Prot(1 << 3);
    pub const MMIO: Prot = Prot(1 << 4);
    pub const PRIV: Prot = Prot(1 << 5);

    pub fn contains(self, other: Prot) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Prot {
    type Output = Prot;
    fn bitor(self, rhs: Prot) -> Prot {
        Prot(self.0 | rhs.0)
    }
}

/// Positive errno values (results are their negations). x86-64 / asm-generic numbering.
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const EIO: i32 = 5;
    pub const ENXIO: i32 = 6;
    pub const ENOMEM: i32 = 12;
    pub const EFAULT: i32 = 14;
    pub const EEXIST: i32 = 17;
    pub const EINVAL: i32 = 22;
    pub const ERANGE: i32 = 34;
    pub const EOVERFLOW: i32 = 75;
    pub const EOPNOTSUPP: i32 = 95;
    pub const EADDRINUSE: i32 = 98;
    pub const EREMOTEIO: i32 = 121;

    /// Names for reports and vectors.
    pub const NAMES: &[(&str, i32)] = &[
        ("EPERM", EPERM),
        ("EIO", EIO),
        ("ENXIO", ENXIO),
        ("ENOMEM", ENOMEM),
        ("EFAULT", EFAULT),
        ("EEXIST", EEXIST),
        ("EINVAL", EINVAL),
        ("ERANGE", ERANGE),
        ("EOVERFLOW", EOVERFLOW),
        ("EOPNOTSUPP", EOPNOTSUPP),
        ("EADDRINUSE", EADDRINUSE),
        ("EREMOTEIO", EREMOTEIO),
    ];

    /// `-EIO` for -5, the number itself for an unknown value.
    pub fn name(ret: i32) -> String {
        NAMES
            .iter()
            .find(|(_, v)| -v == ret)
            .map(|(n, _)| format!("-{n}"))
            .unwrap_or_else(|| ret.to_string())
    }

    /// Parses `-EIO` (also `EIO`) into -5.
    pub fn parse(s: &str) -> Option<i32> {
        let bare = s.strip_prefix('-').unwrap_or(s);
        NAMES.iter().find(|(n, _)| *n == bare).map(|(_, v)| -v)
    }
}

/// A WARN-class diagnostic code. The closed list is `spec/2-outcomes.md` § "WARN codes"; the
/// engine's lint checks that this table and the spec agree.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WarnCode(pub u32);

impl WarnCode {
    /// TRYALLOC-04: `dma_iova_try_alloc` with size 0.
    pub const TRY_ALLOC_ZERO_SIZE: WarnCode = WarnCode(1);
    /// TRYALLOC-05: `dma_iova_try_alloc` with bit 63 of size set.
    pub const TRY_ALLOC_SIZE_FLAG_BIT: WarnCode = WarnCode(2);
    /// LINK-01: unaligned phys at a non-zero offset.
    pub const LINK_UNALIGNED_AT_OFFSET: WarnCode = WarnCode(3);
    /// LINK-02: REQUIRE_COHERENT on a state that already bounced.
    pub const LINK_COHERENT_AFTER_BOUNCE: WarnCode = WarnCode(4);
    /// UNLINK-03: fewer bytes unmapped than asked.
    pub const UNLINK_SHORT_UNMAP: WarnCode = WarnCode(5);
    /// UNLINK-04: the slow path met a granule with no translation.
    pub const UNLINK_UNTRANSLATED: WarnCode = WarnCode(6);
    /// Raised by the page table (iommupt backend): map with neither READ nor WRITE.
    pub const MAP_NO_ACCESS: WarnCode = WarnCode(7);
    /// Raised by the page table (io-pgtable path): the "unaligned" error print of
    /// `__iommu_map_domain_pgtbl` (an error report in Linux, not a WARN; listed so a door can
    /// report it).
    pub const MAP_UNALIGNED: WarnCode = WarnCode(8);

    /// STREAM-01: `__iommu_dma_map` refuses a `min_align_mask` wider than the granule
    /// ("Unsupported alignment constraint").
    pub const STREAM_MIN_ALIGN_UNSUPPORTED: WarnCode = WarnCode(9);
    /// STREAM-03: `iommu_dma_unmap_phys` found no translation for the handle.
    pub const STREAM_UNMAP_UNTRANSLATED: WarnCode = WarnCode(10);
    /// STREAM-03: `__iommu_dma_unmap` removed a different number of bytes than asked.
    pub const STREAM_UNMAP_SHORT: WarnCode = WarnCode(11);
    /// STREAM-05: dma-direct cannot reach the address and cannot bounce it ("DMA addr ...
    /// overflow").
    pub const DIRECT_OVERFLOW: WarnCode = WarnCode(12);
    /// Raised by the page table (io-pgtable-arm): a map meets an existing leaf, -EEXIST
    /// (`arm_lpae_init_pte`, `__arm_lpae_map`).
    pub const MAP_EXISTS: WarnCode = WarnCode(13);
    /// Raised by the page table (io-pgtable-arm): IOVA or physical address out of range,
    /// -ERANGE (`arm_lpae_map_pages`).
    pub const MAP_OUT_OF_RANGE: WarnCode = WarnCode(14);
    /// Raised by the page table (io-pgtable-arm): an unmap meets an empty entry
    /// (`__arm_lpae_unmap`).
    pub const UNMAP_MISSING: WarnCode = WarnCode(15);
    /// Raised by the page table (io-pgtable-arm): an unmap would split a large leaf
    /// (`__arm_lpae_unmap`, `WARN_ONCE`).
    pub const UNMAP_PARTIAL_LEAF: WarnCode = WarnCode(16);

    /// Every code, with its vector spelling. Keep in step with `spec/2-outcomes.md`.
    pub const ALL: &'static [(&'static str, WarnCode)] = &[
        ("try_alloc_zero_size", WarnCode::TRY_ALLOC_ZERO_SIZE),
        ("try_alloc_size_flag_bit", WarnCode::TRY_ALLOC_SIZE_FLAG_BIT),
        (
            "link_unaligned_at_offset",
            WarnCode::LINK_UNALIGNED_AT_OFFSET,
        ),
        (
            "link_coherent_after_bounce",
            WarnCode::LINK_COHERENT_AFTER_BOUNCE,
        ),
        ("unlink_short_unmap", WarnCode::UNLINK_SHORT_UNMAP),
        ("unlink_untranslated", WarnCode::UNLINK_UNTRANSLATED),
        ("map_no_access", WarnCode::MAP_NO_ACCESS),
        ("map_unaligned", WarnCode::MAP_UNALIGNED),
        (
            "stream_min_align_unsupported",
            WarnCode::STREAM_MIN_ALIGN_UNSUPPORTED,
        ),
        (
            "stream_unmap_untranslated",
            WarnCode::STREAM_UNMAP_UNTRANSLATED,
        ),
        ("stream_unmap_short", WarnCode::STREAM_UNMAP_SHORT),
        ("direct_overflow", WarnCode::DIRECT_OVERFLOW),
        ("map_exists", WarnCode::MAP_EXISTS),
        ("map_out_of_range", WarnCode::MAP_OUT_OF_RANGE),
        ("unmap_missing", WarnCode::UNMAP_MISSING),
        ("unmap_partial_leaf", WarnCode::UNMAP_PARTIAL_LEAF),
    ];

    pub fn name(self) -> &'static str {
        WarnCode::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .unwrap_or("unknown")
    }

    pub fn from_name(name: &str) -> Option<WarnCode> {
        WarnCode::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
    }
}

/// Architecture of the platform; selects the cache lowering (spec/1-platform.md).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    X86 = 0,
    Arm64 = 1,
    Riscv = 2,
    Arm = 3,
}

/// Page-table backend; decides map error codes (spec/1-platform.md § 1.5).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PgtableBackend {
    /// generic_pt (Intel VT-d, AMD, RISC-V in 7.3): -EADDRINUSE / -ENXIO / -ERANGE.
    Iommupt = 0,
    /// io-pgtable-arm (Arm SMMU): -EEXIST / -EINVAL.
    IoPgtableArm = 1,
}

/// The device's default domain type (`iommu_get_default_domain_type` outcome).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DomainType {
    /// No IOMMU translates for the device: dma-direct.
    None = 0,
    /// IOMMU present, identity (passthrough) default domain: dma-direct.
    Identity = 1,
    /// `IOMMU_DOMAIN_DMA`: translated, strict invalidation.
    Dma = 2,
    /// `IOMMU_DOMAIN_DMA_FQ`: translated, lazy invalidation through the flush queue.
    DmaFq = 3,
}

impl DomainType {
    /// `use_dma_iommu(dev)`: the DMA API goes through iommu-dma.
    pub fn is_dma_api(self) -> bool {
        matches!(self, DomainType::Dma | DomainType::DmaFq)
    }
}

/// Read-only facts about the device and its platform. `#[repr(C)]`, so it is passed whole
/// across the C ABI.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformFacts {
    pub arch: Arch,
    pub domain: DomainType,
    pub backend: PgtableBackend,
    /// `domain->pgsize_bitmap`; the granule is its lowest set bit.
    pub pgsize_bitmap: u64,
    /// `domain->geometry.aperture_start/end`, inclusive.
    pub aperture_start: u64,
    pub aperture_end: u64,
    /// `domain->geometry.force_aperture`.
    pub force_aperture: bool,
    /// `dev_is_dma_coherent(dev)`.
    pub coherent: bool,
    /// `pci_dev->untrusted`.
    pub untrusted: bool,
    /// The device is a PCI device (enables the 32-bit-first IOVA attempt).
    pub pci: bool,
    /// `iommu.forcedac=1`: no 32-bit-first attempt for PCI devices.
    pub forcedac: bool,
    /// `dma_get_mask(dev)` (streaming mask).
    pub dma_mask: u64,
    /// `dev->bus_dma_limit` (0 = none).
    pub bus_dma_limit: u64,
    /// `dma_get_min_align_mask(dev)`.
    pub min_align_mask: u64,
    /// `dma_get_cache_alignment()` in bytes.
    pub cache_line: u64,
    /// CONFIG_SWIOTLB and the device's pool is active (`is_swiotlb_active`).
    pub swiotlb: bool,
    /// CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC (arm64; riscv with SWIOTLB).
    pub kmalloc_bounce: bool,
    /// The IOVA API is built (CONFIG_IOMMU_DMA: arm64, x86, s390). Without it the header stubs
    /// apply (TRYALLOC-03).
    pub iommu_dma_config: bool,
    /// Number of CPUs (per-CPU IOVA caches).
    pub nr_cpus: u32,
    /// Physical address of the MSI doorbell the device's interrupts write to through
    /// iommu-dma's software-managed MSI page (an Arm GIC ITS `GITS_TRANSLATER` behind an SMMU
    /// whose MSI window is `IOMMU_RESV_SW_MSI`), or 0 when the device has none. When set, the DMA
    /// layer takes one granule from the IOVA allocator and maps the doorbell there at probe
    /// (`iommu_dma_get_msi_page`, IOVA-06).
    pub msi_doorbell: u64,
    /// `dma_get_max_seg_size(dev)`: the longest DMA segment `dma_map_sg` may hand back
    /// (Linux default 64 KiB, which PCI probe also sets).
    pub max_seg_size: u32,
    /// `dma_get_seg_boundary(dev)`: no DMA segment of `dma_map_sg` crosses a multiple of
    /// `mask + 1` (PCI probe sets `0xFFFFFFFF`; a device without `dma_parms` has all ones).
    pub seg_boundary_mask: u64,
    /// dma-direct bounces every RAM mapping (`is_swiotlb_force_bounce`: `swiotlb=force`, or a
    /// restricted DMA pool). Ignored on iommu-dma. STREAM-15.
    pub swiotlb_force: bool,
    /// The device's single `dma_range_map` offset on dma-direct: `phys_to_dma(phys) = phys -
    /// dma_offset` (a DT `dma-ranges` whose bus window sits below the CPU window; 0 = none).
    /// STREAM-16.
    pub dma_offset: u64,
    /// The domain's page-table format can express a PTE the device may write but not read
    /// (`IOMMU_WRITE` without `IOMMU_READ`, a `FROM_DEVICE` link). True for VT-d second stage
    /// (`vtdss_pt_iommu_set_prot`: separate R and W bits) and AMD v1; false for io-pgtable-arm
    /// stage 1 (`arm_lpae_prot_to_pte`: only a read-only AP bit), the x86_64 first-stage format
    /// (`x86_64_pt_iommu_set_prot`: a present PTE is readable) and riscv (W implies R). Where
    /// false, a write-only link is readable by the device too. PROT-01.
    pub write_only_pte: bool,
}

impl Default for PlatformFacts {
    /// A trusted, coherent x86 PCI device on a strict VT-d DMA domain: 4K/2M/1G pages, 48-bit
    /// aperture, 64-bit mask, 64-byte lines, no bounce pool, one CPU, Linux's default segment
    /// limits. A starting point for tests and for implementations that build facts field by
    /// field (`PlatformFacts { coherent: false, ..Default::default() }`).
    fn default() -> PlatformFacts {
        PlatformFacts {
            arch: Arch::X86,
            domain: DomainType::Dma,
            backend: PgtableBackend::Iommupt,
            pgsize_bitmap: 0x4020_1000,
            aperture_start: 0,
            aperture_end: (1 << 48) - 1,
            force_aperture: true,
            coherent: true,
            untrusted: false,
            pci: true,
            forcedac: false,
            dma_mask: u64::MAX,
            bus_dma_limit: 0,
            min_align_mask: 0,
            cache_line: 64,
            swiotlb: false,
            kmalloc_bounce: false,
            iommu_dma_config: true,
            nr_cpus: 1,
            msi_doorbell: 0,
            max_seg_size: 0x10000,
            seg_boundary_mask: 0xFFFF_FFFF,
            swiotlb_force: false,
            dma_offset: 0,
            write_only_pte: true,
        }
    }
}

impl PlatformFacts {
    /// `iovad->granule`: the smallest page size of the domain.
    pub fn granule(&self) -> u64 {
        if self.pgsize_bitmap == 0 {
            0
        } else {
            1u64 << self.pgsize_bitmap.trailing_zeros()
        }
    }
}

/// What a reserved IOVA region is (`enum iommu_resv_type` plus the PCI sources).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    /// A PCI host-bridge memory window.
    PciWindow = 0,
    /// A gap between host-bridge `dma_ranges`.
    DmaRangeGap = 1,
    /// `IOMMU_RESV_MSI` (e.g. x86 0xFEE00000-0xFEEFFFFF).
    Msi = 2,
    /// `IOMMU_RESV_RESERVED`.
    Reserved = 3,
    /// `IOMMU_RESV_DIRECT` (RMRR/IVMD).
    Direct = 4,
}

/// A reserved IOVA region, bus addresses, both ends inclusive.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub kind: RegionKind,
}

/// `enum pci_p2pdma_map_type`, Linux numbering: what `pci_p2pdma_state` says about a physical
/// address for the device (`Platform::p2p_type`).
pub mod p2p {
    /// `PCI_P2PDMA_MAP_UNKNOWN`: internal to the P2P code; the DMA layer treats it as an error.
    pub const UNKNOWN: u32 = 0;
    /// `PCI_P2PDMA_MAP_NONE`: not P2P memory (RAM, or MMIO that is no P2P provider's).
    pub const NONE: u32 = 1;
    /// `PCI_P2PDMA_MAP_NOT_SUPPORTED`: the path crosses a host bridge not on the allow-list.
    pub const NOT_SUPPORTED: u32 = 2;
    /// `PCI_P2PDMA_MAP_BUS_ADDR`: behind a common switch; the device uses `phys + bus_offset`
    /// directly, nothing is mapped.
    pub const BUS_ADDR: u32 = 3;
    /// `PCI_P2PDMA_MAP_THRU_HOST_BRIDGE`: through the host bridge; mapped like memory, with
    /// `DMA_ATTR_MMIO`.
    pub const THRU_HOST_BRIDGE: u32 = 4;

    /// The vector spelling of a map type.
    pub fn name(t: u32) -> &'static str {
        match t {
            UNKNOWN => "unknown",
            NONE => "none",
            NOT_SUPPORTED => "not_supported",
            BUS_ADDR => "bus_addr",
            THRU_HOST_BRIDGE => "thru_host_bridge",
            _ => "invalid",
        }
    }
}

/// `sg_dma_mark_bus_address`: the DMA segment is a P2P bus address, not mapped by the DMA layer.
pub const SG_DMA_BUS_ADDRESS: u32 = 1 << 0;
/// `sg_dma_mark_swiotlb`: the list was mapped segment by segment (set on entry 0 only).
pub const SG_DMA_SWIOTLB: u32 = 1 << 1;

/// One scatterlist entry (`struct scatterlist` reduced to what the DMA layer reads and writes).
/// The caller fills `phys` and `len`; `dma_map_sg` writes `dma_address` / `dma_len` of the
/// first `count` entries (the DMA segments, possibly fewer than the entries) and the flags.
/// `dma_unmap_sg` takes the same array back.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SgEntry {
    pub phys: u64,
    pub len: u64,
    pub dma_address: u64,
    pub dma_len: u64,
    pub flags: u32,
}
