//! The dmaconf C ABI, major 1, as Rust declarations. cbindgen turns this file into
//! `ffi/c/include/dmaconf.h` (committed; `tests/header.rs` fails when they differ), so every doc
//! comment here is also the header's. The normative contract is `spec/8-c-abi.md`.
//!
//! The ABI is `runner/platform` one-to-one: [`dmaconf_host`] is the `Platform` trait (what a
//! plug-in may call), [`dmaconf_plugin`] is the `DmaApi` trait (what a plug-in implements).
//! Only fixed-width integers, pointers and `#[repr(C)]` structs of those cross the line: no
//! `bool` (booleans are `uint32_t` 0 or 1), no enum, no `size_t`. Errors are negative errno
//! values, x86-64 / asm-generic numbering (the `DMACONF_E*` constants).
//!
//! Threads: the host calls a plug-in from one thread at a time, and a plug-in calls the host
//! only on the thread and during the plug-in call the host made (`spec/8-c-abi.md` § 8.7).
#![forbid(unsafe_code)]
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};

/// ABI major version. A host refuses a plug-in whose `abi_major` differs from its own.
pub const DMACONF_ABI_MAJOR: u32 = 1;
/// ABI minor version. Minors only append members to the tables; either side reads only the
/// members that fit in the other side's `struct_size`.
pub const DMACONF_ABI_MINOR: u32 = 1;

/// Capability: the two-step IOVA calls (`dma_iova_try_alloc` ... `dma_iova_free`).
pub const DMACONF_CAP_IOVA_API: u64 = 1 << 0;
/// Capability: the streaming calls (`dma_map_phys`, `dma_unmap_phys`, `dma_sync_single_*`,
/// `dma_need_unmap`, `dma_need_sync`).
pub const DMACONF_CAP_STREAMING: u64 = 1 << 1;
/// Capability: `dma_map_sg` / `dma_unmap_sg`.
pub const DMACONF_CAP_SG: u64 = 1 << 2;
/// Capability: exact Linux 7.3 values (IOVAs, event order); the `linux` profile expects it.
pub const DMACONF_CAP_LINUX_EXACT: u64 = 1 << 3;

/// `DMA_IOVA_USE_SWIOTLB`: bit 63 of `dmaconf_iova_state.size` (STATE-04).
pub const DMACONF_IOVA_USE_SWIOTLB: u64 = 0x8000_0000_0000_0000u64;
/// `DMA_MAPPING_ERROR`: what a failed `map_*` call returns.
pub const DMACONF_MAPPING_ERROR: u64 = u64::MAX;

/// `enum dma_data_direction`, Linux numbering (the `dir` arguments, `uint32_t`).
pub const DMACONF_DIR_BIDIRECTIONAL: u32 = 0;
pub const DMACONF_DIR_TO_DEVICE: u32 = 1;
pub const DMACONF_DIR_FROM_DEVICE: u32 = 2;
pub const DMACONF_DIR_NONE: u32 = 3;

/// `DMA_ATTR_*` bits, Linux bit numbers (the `attrs` arguments, `uint64_t`).
pub const DMACONF_ATTR_WEAK_ORDERING: u64 = 1 << 1;
pub const DMACONF_ATTR_WRITE_COMBINE: u64 = 1 << 2;
pub const DMACONF_ATTR_NO_KERNEL_MAPPING: u64 = 1 << 4;
pub const DMACONF_ATTR_SKIP_CPU_SYNC: u64 = 1 << 5;
pub const DMACONF_ATTR_FORCE_CONTIGUOUS: u64 = 1 << 6;
pub const DMACONF_ATTR_ALLOC_SINGLE_PAGES: u64 = 1 << 7;
pub const DMACONF_ATTR_NO_WARN: u64 = 1 << 8;
pub const DMACONF_ATTR_PRIVILEGED: u64 = 1 << 9;
pub const DMACONF_ATTR_MMIO: u64 = 1 << 10;
pub const DMACONF_ATTR_DEBUGGING_IGNORE_CACHELINES: u64 = 1 << 11;
pub const DMACONF_ATTR_REQUIRE_COHERENT: u64 = 1 << 12;
pub const DMACONF_ATTR_CC_SHARED: u64 = 1 << 13;

/// `IOMMU_READ` ... protection bits, Linux values (`iommu_map`'s `prot`, `uint32_t`).
pub const DMACONF_PROT_READ: u32 = 1 << 0;
pub const DMACONF_PROT_WRITE: u32 = 1 << 1;
pub const DMACONF_PROT_CACHE: u32 = 1 << 2;
pub const DMACONF_PROT_NOEXEC: u32 = 1 << 3;
pub const DMACONF_PROT_MMIO: u32 = 1 << 4;
pub const DMACONF_PROT_PRIV: u32 = 1 << 5;

/// WARN codes for `dmaconf_host.warn` (the closed list of spec/2-outcomes.md § "WARN codes").
pub const DMACONF_WARN_TRY_ALLOC_ZERO_SIZE: u32 = 1;
pub const DMACONF_WARN_TRY_ALLOC_SIZE_FLAG_BIT: u32 = 2;
pub const DMACONF_WARN_LINK_UNALIGNED_AT_OFFSET: u32 = 3;
pub const DMACONF_WARN_LINK_COHERENT_AFTER_BOUNCE: u32 = 4;
pub const DMACONF_WARN_UNLINK_SHORT_UNMAP: u32 = 5;
pub const DMACONF_WARN_UNLINK_UNTRANSLATED: u32 = 6;
pub const DMACONF_WARN_MAP_NO_ACCESS: u32 = 7;
pub const DMACONF_WARN_MAP_UNALIGNED: u32 = 8;
pub const DMACONF_WARN_STREAM_MIN_ALIGN_UNSUPPORTED: u32 = 9;
pub const DMACONF_WARN_STREAM_UNMAP_UNTRANSLATED: u32 = 10;
pub const DMACONF_WARN_STREAM_UNMAP_SHORT: u32 = 11;
pub const DMACONF_WARN_DIRECT_OVERFLOW: u32 = 12;
/// io-pgtable-arm: a map over a live PTE (`-EEXIST` path). Since minor 1.
pub const DMACONF_WARN_MAP_EXISTS: u32 = 13;
/// io-pgtable-arm: a map beyond the input address size (`-ERANGE` path). Since minor 1.
pub const DMACONF_WARN_MAP_OUT_OF_RANGE: u32 = 14;
/// io-pgtable-arm: an unmap of a missing entry. Since minor 1.
pub const DMACONF_WARN_UNMAP_MISSING: u32 = 15;
/// io-pgtable-arm: an unmap of part of a block (leaf) entry. Since minor 1.
pub const DMACONF_WARN_UNMAP_PARTIAL_LEAF: u32 = 16;

/// `enum pci_p2pdma_map_type`, Linux numbering (`dmaconf_host.p2p_type`).
pub const DMACONF_P2P_UNKNOWN: u32 = 0;
pub const DMACONF_P2P_NONE: u32 = 1;
pub const DMACONF_P2P_NOT_SUPPORTED: u32 = 2;
pub const DMACONF_P2P_BUS_ADDR: u32 = 3;
pub const DMACONF_P2P_THRU_HOST_BRIDGE: u32 = 4;

/// `dmaconf_sg_entry.flags`: the segment is a P2P bus address (`sg_dma_mark_bus_address`).
pub const DMACONF_SG_DMA_BUS_ADDRESS: u32 = 1 << 0;
/// `dmaconf_sg_entry.flags`: the list was mapped segment by segment (`sg_dma_mark_swiotlb`,
/// entry 0 only).
pub const DMACONF_SG_DMA_SWIOTLB: u32 = 1 << 1;

/// `dmaconf_facts.arch`.
pub const DMACONF_ARCH_X86: u32 = 0;
pub const DMACONF_ARCH_ARM64: u32 = 1;
pub const DMACONF_ARCH_RISCV: u32 = 2;
pub const DMACONF_ARCH_ARM: u32 = 3;

/// `dmaconf_facts.domain`: the device's default domain type.
pub const DMACONF_DOMAIN_NONE: u32 = 0;
pub const DMACONF_DOMAIN_IDENTITY: u32 = 1;
pub const DMACONF_DOMAIN_DMA: u32 = 2;
pub const DMACONF_DOMAIN_DMA_FQ: u32 = 3;

/// `dmaconf_facts.backend`: the page-table backend, which decides map error codes.
pub const DMACONF_BACKEND_IOMMUPT: u32 = 0;
pub const DMACONF_BACKEND_IO_PGTABLE_ARM: u32 = 1;

/// `dmaconf_region.kind`.
pub const DMACONF_REGION_PCI_WINDOW: u32 = 0;
pub const DMACONF_REGION_DMA_RANGE_GAP: u32 = 1;
pub const DMACONF_REGION_MSI: u32 = 2;
pub const DMACONF_REGION_RESERVED: u32 = 3;
pub const DMACONF_REGION_DIRECT: u32 = 4;

/// Negative errno values cross the ABI with these numbers (x86-64 / asm-generic), whatever
/// the plug-in's own `<errno.h>` says.
pub const DMACONF_EPERM: i32 = 1;
pub const DMACONF_ENOENT: i32 = 2;
pub const DMACONF_EIO: i32 = 5;
pub const DMACONF_ENXIO: i32 = 6;
pub const DMACONF_ENOMEM: i32 = 12;
pub const DMACONF_EFAULT: i32 = 14;
pub const DMACONF_EEXIST: i32 = 17;
pub const DMACONF_EINVAL: i32 = 22;
pub const DMACONF_ERANGE: i32 = 34;
pub const DMACONF_EOVERFLOW: i32 = 75;
pub const DMACONF_EOPNOTSUPP: i32 = 95;
pub const DMACONF_EADDRINUSE: i32 = 98;
pub const DMACONF_EREMOTEIO: i32 = 121;

/// `struct dma_iova_state`. Owner: the host (the driver, in Linux terms). The host passes a
/// pointer to it for the duration of one call; the plug-in reads it and, in `iova_try_alloc`
/// and `iova_link` only, writes it. The plug-in must not keep the pointer after the call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct dmaconf_iova_state {
    /// The IOVA the allocation starts at (0 when none).
    pub addr: u64,
    /// Linux's `__size`: the caller's size, with `DMACONF_IOVA_USE_SWIOTLB` as a flag.
    pub size: u64,
}

/// One scatterlist entry (`struct scatterlist`, reduced to what the DMA layer reads and
/// writes). Owner: the host; an array of them is lent to `map_sg` / `unmap_sg` for the call.
/// The host fills `phys` and `len`; `map_sg` writes `dma_address`, `dma_len` of the first N
/// entries (N = its return value) and `flags`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct dmaconf_sg_entry {
    /// CPU physical address of the entry's memory (`sg_phys`).
    pub phys: u64,
    /// Length of the entry in bytes.
    pub len: u64,
    /// `sg_dma_address`, written by `map_sg`.
    pub dma_address: u64,
    /// `sg_dma_len`, written by `map_sg`.
    pub dma_len: u64,
    /// `DMACONF_SG_DMA_*` bits, written by `map_sg`.
    pub flags: u32,
    /// Zero; keeps the size a multiple of 8 on every ABI. Ignored by both sides.
    pub reserved: u32,
}

/// A reserved IOVA region of the device, bus addresses, both ends inclusive. Owner: the
/// plug-in (its storage); `dmaconf_host.reserved_region` writes it during the call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct dmaconf_region {
    pub start: u64,
    pub end: u64,
    /// `DMACONF_REGION_*`.
    pub kind: u32,
    /// Zero. Ignored.
    pub reserved: u32,
}

/// Read-only facts about the device and its platform (`PlatformFacts`, spec/1-platform.md).
/// Owner: the plug-in (its storage). The plug-in sets `struct_size` to
/// `sizeof(struct dmaconf_facts)` before calling `dmaconf_host.facts`; the host writes only
/// the members that fit in that size and sets `struct_size` to the bytes it wrote (members a
/// newer minor appends are left untouched for an older plug-in). Booleans are 0 or 1.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct dmaconf_facts {
    /// In: the size of the plug-in's struct; out: the bytes the host wrote.
    pub struct_size: u32,
    /// `DMACONF_ARCH_*`.
    pub arch: u32,
    /// `DMACONF_DOMAIN_*`.
    pub domain: u32,
    /// `DMACONF_BACKEND_*`.
    pub backend: u32,
    /// `domain->pgsize_bitmap`; the granule is its lowest set bit.
    pub pgsize_bitmap: u64,
    /// `domain->geometry.aperture_start`, inclusive.
    pub aperture_start: u64,
    /// `domain->geometry.aperture_end`, inclusive.
    pub aperture_end: u64,
    /// `domain->geometry.force_aperture` (0/1).
    pub force_aperture: u32,
    /// `dev_is_dma_coherent(dev)` (0/1).
    pub coherent: u32,
    /// `pci_dev->untrusted` (0/1).
    pub untrusted: u32,
    /// The device is a PCI device (0/1).
    pub pci: u32,
    /// `iommu.forcedac=1` (0/1).
    pub forcedac: u32,
    /// CONFIG_SWIOTLB and the device's pool is active (0/1).
    pub swiotlb: u32,
    /// `dma_get_mask(dev)`.
    pub dma_mask: u64,
    /// `dev->bus_dma_limit` (0 = none).
    pub bus_dma_limit: u64,
    /// `dma_get_min_align_mask(dev)`.
    pub min_align_mask: u64,
    /// `dma_get_cache_alignment()` in bytes.
    pub cache_line: u64,
    /// CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC (0/1).
    pub kmalloc_bounce: u32,
    /// CONFIG_IOMMU_DMA: the IOVA API is built (0/1); without it the header stubs apply.
    pub iommu_dma_config: u32,
    /// Number of CPUs.
    pub nr_cpus: u32,
    /// `dma_get_max_seg_size(dev)`.
    pub max_seg_size: u32,
    /// Physical address of the device's MSI doorbell behind a software-managed MSI window,
    /// or 0 (IOVA-06).
    pub msi_doorbell: u64,
    /// `dma_get_seg_boundary(dev)`.
    pub seg_boundary_mask: u64,
    /// dma-direct bounces every RAM mapping (`is_swiotlb_force_bounce`, 0/1). STREAM-15.
    pub swiotlb_force: u32,
    /// Zero. Ignored.
    pub reserved: u32,
    /// dma-direct's `dma_range_map` offset: `phys_to_dma(phys) = phys - dma_offset`.
    /// STREAM-16.
    pub dma_offset: u64,
    /// The page-table format can express a PTE the device may write but not read (0/1;
    /// PROT-01). Since minor 1: a host of minor 0 leaves it unwritten, so a plug-in reads it
    /// only when the returned `struct_size` covers it.
    pub write_only_pte: u32,
    /// Zero. Ignored.
    pub reserved2: u32,
}

/// The plug-in's per-vector device: one probe, one IOVA domain. Opaque to the host: the
/// plug-in defines `struct dmaconf_device { ... }` in its own source. Owner: the plug-in;
/// created by `dmaconf_plugin.create`, released by `dmaconf_plugin.destroy`.
pub struct dmaconf_device {
    _opaque: (),
}

/// What a plug-in may call: the `Platform` trait of `runner/platform`, one function per
/// method, each taking the `host_ctx` that `create` received as its first argument.
///
/// Owner: the host. The table and `host_ctx` stay valid from `create` until `destroy` returns.
/// Threads: a plug-in calls these functions only during a call the host made into it
/// (`create`, `probe`, `iova_*`, `map_*` ...; never during `destroy`), on that call's thread.
/// Every member is non-NULL in a table whose `struct_size` covers it. A host function never
/// unwinds or longjmps into the plug-in. A violation (a range `[start, start + len)` that wraps
/// past 2^64, a NULL out pointer, a slot outside every bounce pool, a call outside a host call:
/// spec/8-c-abi.md § 8.9) is refused: the function returns at once (-DMACONF_EINVAL,
/// 0 or nothing) without touching the platform, every later host call in the same plug-in call
/// is refused too, and when the plug-in returns the host ends the vector's run as a harness
/// error naming the member and the argument.
#[repr(C)]
pub struct dmaconf_host {
    /// `sizeof(struct dmaconf_host)` as the host built it; read members only below it.
    pub struct_size: u32,
    /// The host's `DMACONF_ABI_MAJOR`.
    pub abi_major: u32,
    /// The host's `DMACONF_ABI_MINOR`.
    pub abi_minor: u32,
    /// Zero.
    pub reserved: u32,
    /// Writes the device facts into `*out` (see `struct dmaconf_facts` for `struct_size`) and
    /// returns 0. A NULL `out` or an `out->struct_size` below 8 is a violation.
    pub facts: Option<unsafe extern "C" fn(host_ctx: *mut c_void, out: *mut dmaconf_facts) -> i32>,
    /// Writes the `index`-th reserved region into `*out` and returns 0; returns
    /// -DMACONF_ENOENT past the last one. A NULL `out` is a violation.
    pub reserved_region: Option<
        unsafe extern "C" fn(host_ctx: *mut c_void, index: u32, out: *mut dmaconf_region) -> i32,
    >,
    /// The CPU the current call runs on.
    pub current_cpu: Option<unsafe extern "C" fn(host_ctx: *mut c_void) -> u32>,
    /// Platform time in nanoseconds (0 on a platform without time).
    pub now_ns: Option<unsafe extern "C" fn(host_ctx: *mut c_void) -> u64>,
    /// `iommu_map` without IOTLB work: 0 or -errno (the preset's page-table backend decides
    /// which). `prot` is `DMACONF_PROT_*`.
    pub iommu_map: Option<
        unsafe extern "C" fn(
            host_ctx: *mut c_void,
            iova: u64,
            phys: u64,
            len: u64,
            prot: u32,
        ) -> i32,
    >,
    /// `iommu_sync_map` of `[iova, iova+len)`: 0 or -errno.
    pub iotlb_sync_map:
        Option<unsafe extern "C" fn(host_ctx: *mut c_void, iova: u64, len: u64) -> i32>,
    /// `iommu_unmap_fast` into a gather: returns the bytes unmapped.
    pub iommu_unmap:
        Option<unsafe extern "C" fn(host_ctx: *mut c_void, iova: u64, len: u64) -> u64>,
    /// `iommu_iotlb_sync` of a gather covering `[iova, iova+len)`.
    pub iotlb_sync: Option<unsafe extern "C" fn(host_ctx: *mut c_void, iova: u64, len: u64)>,
    /// The flush queue's `flush_iotlb_all`.
    pub flush_iotlb_all: Option<unsafe extern "C" fn(host_ctx: *mut c_void)>,
    /// `iommu_iova_to_phys`: the physical address `iova` translates to, or 0.
    pub iova_to_phys: Option<unsafe extern "C" fn(host_ctx: *mut c_void, iova: u64) -> u64>,
    /// `arch_sync_dma_for_device`; `dir` is `DMACONF_DIR_*`.
    pub sync_for_device:
        Option<unsafe extern "C" fn(host_ctx: *mut c_void, phys: u64, len: u64, dir: u32)>,
    /// `arch_sync_dma_for_cpu`.
    pub sync_for_cpu:
        Option<unsafe extern "C" fn(host_ctx: *mut c_void, phys: u64, len: u64, dir: u32)>,
    /// `arch_sync_dma_flush` (arm64 `dsb sy`).
    pub sync_barrier: Option<unsafe extern "C" fn(host_ctx: *mut c_void)>,
    /// The slot search of `swiotlb_tbl_map_single`: on success writes the bounce address to
    /// `*slot` (owner: the plug-in, written during the call only) and returns 0; else -errno.
    /// Does not copy. A NULL `slot` is a violation.
    pub bounce_alloc: Option<
        unsafe extern "C" fn(
            host_ctx: *mut c_void,
            orig: u64,
            len: u64,
            alloc_align_mask: u64,
            min_align_mask: u64,
            slot: *mut u64,
        ) -> i32,
    >,
    /// `swiotlb_release_slots` of an allocation `bounce_alloc` returned. A `slot` outside every
    /// bounce pool is a violation.
    pub bounce_free: Option<unsafe extern "C" fn(host_ctx: *mut c_void, slot: u64, len: u64)>,
    /// `swiotlb_find_pool`: 1 when `phys` is inside a bounce pool, else 0.
    pub is_bounce: Option<unsafe extern "C" fn(host_ctx: *mut c_void, phys: u64) -> u32>,
    /// The original address recorded for the bounce byte at `phys`, or 0.
    pub bounce_orig: Option<unsafe extern "C" fn(host_ctx: *mut c_void, phys: u64) -> u64>,
    /// Copies `len` bytes of (simulated) physical memory from `src` to `dst` (bounce copies).
    pub copy: Option<unsafe extern "C" fn(host_ctx: *mut c_void, dst: u64, src: u64, len: u64)>,
    /// Fills `len` bytes of (simulated) physical memory at `dst` with `byte`.
    pub fill: Option<unsafe extern "C" fn(host_ctx: *mut c_void, dst: u64, byte: u8, len: u64)>,
    /// `pci_p2pdma_state` for the page holding `phys`: `DMACONF_P2P_*`.
    pub p2p_type: Option<unsafe extern "C" fn(host_ctx: *mut c_void, phys: u64) -> u32>,
    /// The P2P provider's `bus_offset` for `phys`, or 0.
    pub p2p_bus_offset: Option<unsafe extern "C" fn(host_ctx: *mut c_void, phys: u64) -> u64>,
    /// A WARN-class diagnostic: `DMACONF_WARN_*`.
    pub warn: Option<unsafe extern "C" fn(host_ctx: *mut c_void, code: u32)>,
}

/// What a plug-in implements: the `DmaApi` trait of `runner/platform`, one function per
/// method, each taking the device `create` made as its first argument.
///
/// Owner: the plug-in; `dmaconf_plugin_entry` returns a pointer to it, and it and its strings
/// stay valid and unchanged until the library is unloaded. The host reads only the members
/// below `struct_size`, and refuses the plug-in when `struct_size` does not reach
/// `iova_free` (the last member ABI major 1 requires) or when a required member is NULL.
/// The members after `iova_free` are optional: NULL (or beyond `struct_size`) means "the
/// default", exactly as the `DmaApi` trait's default methods behave (spec/8-c-abi.md).
///
/// Threads: the host makes one call at a time per plug-in; calls for one device come from
/// one thread. A plug-in function must return normally (no longjmp, no C++ exception).
#[repr(C)]
pub struct dmaconf_plugin {
    /// `sizeof(struct dmaconf_plugin)` as the plug-in was built.
    pub struct_size: u32,
    /// Must be `DMACONF_ABI_MAJOR`.
    pub abi_major: u32,
    /// `DMACONF_ABI_MINOR` the plug-in was built with (informational; members decide).
    pub abi_minor: u32,
    /// Zero.
    pub reserved: u32,
    /// NUL-terminated UTF-8 name for reports (non-NULL). The host copies it at load.
    pub name: *const c_char,
    /// NUL-terminated UTF-8 version for reports (non-NULL). The host copies it at load.
    pub version: *const c_char,
    /// `DMACONF_CAP_*` bits the plug-in implements; unknown bits are ignored.
    pub capabilities: u64,
    /// Makes one device for one vector run. `host` and `host_ctx` (owner: the host) stay valid
    /// until `destroy(*out)` returns; keep them in the device. The plug-in may call the host
    /// during `create`. On success writes a non-NULL device to `*out` and returns 0; on failure
    /// returns -errno and the host reports the vector as a harness error.
    pub create: Option<
        unsafe extern "C" fn(
            host: *const dmaconf_host,
            host_ctx: *mut c_void,
            out: *mut *mut dmaconf_device,
        ) -> i32,
    >,
    /// Releases a device and everything it owns. No host calls during `destroy`.
    pub destroy: Option<unsafe extern "C" fn(dev: *mut dmaconf_device)>,
    /// Device probe: set up the IOVA domain from the facts (`iommu_dma_init_domain`).
    /// Returns 0 or -errno.
    pub probe: Option<unsafe extern "C" fn(dev: *mut dmaconf_device) -> i32>,
    /// `dma_iova_try_alloc`: returns 1 (allocated) or 0. Writes `*state` (owner: the host,
    /// lent for the call). TRYALLOC-*.
    pub iova_try_alloc: Option<
        unsafe extern "C" fn(
            dev: *mut dmaconf_device,
            state: *mut dmaconf_iova_state,
            phys: u64,
            size: u64,
        ) -> u32,
    >,
    /// `dma_iova_link`: 0 or -errno. May write `*state` (the SWIOTLB flag). LINK-*.
    pub iova_link: Option<
        unsafe extern "C" fn(
            dev: *mut dmaconf_device,
            state: *mut dmaconf_iova_state,
            phys: u64,
            offset: u64,
            size: u64,
            dir: u32,
            attrs: u64,
        ) -> i32,
    >,
    /// `dma_iova_sync`: 0 or -errno. SYNC-*.
    pub iova_sync: Option<
        unsafe extern "C" fn(
            dev: *mut dmaconf_device,
            state: *const dmaconf_iova_state,
            offset: u64,
            size: u64,
        ) -> i32,
    >,
    /// `dma_iova_unlink`. UNLINK-*.
    pub iova_unlink: Option<
        unsafe extern "C" fn(
            dev: *mut dmaconf_device,
            state: *const dmaconf_iova_state,
            offset: u64,
            size: u64,
            dir: u32,
            attrs: u64,
        ),
    >,
    /// `dma_iova_destroy`. DESTROY-*.
    pub iova_destroy: Option<
        unsafe extern "C" fn(
            dev: *mut dmaconf_device,
            state: *const dmaconf_iova_state,
            mapped_len: u64,
            dir: u32,
            attrs: u64,
        ),
    >,
    /// `dma_iova_free`. FREE-*. The last member major 1 requires.
    pub iova_free:
        Option<unsafe extern "C" fn(dev: *mut dmaconf_device, state: *const dmaconf_iova_state)>,
    /// Optional. `dma_use_iova` (1/0). Default: `state->size != 0`. STATE-02.
    pub use_iova: Option<
        unsafe extern "C" fn(dev: *mut dmaconf_device, state: *const dmaconf_iova_state) -> u32,
    >,
    /// Optional. `dma_iova_size`. Default: `state->size` without `DMACONF_IOVA_USE_SWIOTLB`.
    /// STATE-03.
    pub iova_size: Option<
        unsafe extern "C" fn(dev: *mut dmaconf_device, state: *const dmaconf_iova_state) -> u64,
    >,
    /// Optional. `dma_map_phys`: the DMA address or `DMACONF_MAPPING_ERROR`. Default: returns
    /// `DMACONF_MAPPING_ERROR`. STREAM-*.
    pub map_phys: Option<
        unsafe extern "C" fn(
            dev: *mut dmaconf_device,
            phys: u64,
            size: u64,
            dir: u32,
            attrs: u64,
        ) -> u64,
    >,
    /// Optional. `dma_unmap_phys`. Default: nothing.
    pub unmap_phys: Option<
        unsafe extern "C" fn(dev: *mut dmaconf_device, addr: u64, size: u64, dir: u32, attrs: u64),
    >,
    /// Optional. `dma_sync_single_for_cpu`. Default: nothing. STREAM-07.
    pub sync_single_for_cpu:
        Option<unsafe extern "C" fn(dev: *mut dmaconf_device, addr: u64, size: u64, dir: u32)>,
    /// Optional. `dma_sync_single_for_device`. Default: nothing. STREAM-07.
    pub sync_single_for_device:
        Option<unsafe extern "C" fn(dev: *mut dmaconf_device, addr: u64, size: u64, dir: u32)>,
    /// Optional. `dma_map_sg`: maps the `nents` entries of `segs` (owner: the host, lent for
    /// the call) and returns the number of DMA segments written at its front, or -errno.
    /// Default: -DMACONF_EOPNOTSUPP. STREAM-08..12.
    pub map_sg: Option<
        unsafe extern "C" fn(
            dev: *mut dmaconf_device,
            segs: *mut dmaconf_sg_entry,
            nents: u32,
            dir: u32,
            attrs: u64,
        ) -> i32,
    >,
    /// Optional. `dma_unmap_sg` of a list `map_sg` mapped, with all its original entries.
    /// Default: nothing.
    pub unmap_sg: Option<
        unsafe extern "C" fn(
            dev: *mut dmaconf_device,
            segs: *mut dmaconf_sg_entry,
            nents: u32,
            dir: u32,
            attrs: u64,
        ),
    >,
    /// Optional. `dma_need_unmap` (1/0). Default: 1. STREAM-06.
    pub need_unmap: Option<unsafe extern "C" fn(dev: *mut dmaconf_device) -> u32>,
    /// Optional. `dma_need_sync(dev, addr)` (1/0). Default: 1. STREAM-13.
    pub need_sync: Option<unsafe extern "C" fn(dev: *mut dmaconf_device, addr: u64) -> u32>,
    /// Optional. `dma_map_page_attrs`. Default: `DMACONF_MAPPING_ERROR` when `attrs` has
    /// `DMACONF_ATTR_MMIO`, else `map_phys`. STREAM-14.
    pub map_page_attrs: Option<
        unsafe extern "C" fn(
            dev: *mut dmaconf_device,
            phys: u64,
            size: u64,
            dir: u32,
            attrs: u64,
        ) -> u64,
    >,
    /// Optional. `dma_unmap_page_attrs`. Default: nothing when `attrs` has
    /// `DMACONF_ATTR_MMIO`, else `unmap_phys`. STREAM-14.
    pub unmap_page_attrs: Option<
        unsafe extern "C" fn(dev: *mut dmaconf_device, addr: u64, size: u64, dir: u32, attrs: u64),
    >,
    /// Optional. `dma_map_resource`. Default: `map_phys` with `DMACONF_ATTR_MMIO` added.
    /// STREAM-14.
    pub map_resource: Option<
        unsafe extern "C" fn(
            dev: *mut dmaconf_device,
            phys: u64,
            size: u64,
            dir: u32,
            attrs: u64,
        ) -> u64,
    >,
    /// Optional. `dma_unmap_resource`. Default: `unmap_phys` with `DMACONF_ATTR_MMIO` added.
    pub unmap_resource: Option<
        unsafe extern "C" fn(dev: *mut dmaconf_device, addr: u64, size: u64, dir: u32, attrs: u64),
    >,
    /// Optional. Platform time moved to `now_ns`: run the timers that expired (the flush
    /// queue's). Default: nothing. STREAM-04.
    pub advance_time: Option<unsafe extern "C" fn(dev: *mut dmaconf_device, now_ns: u64)>,
}

/// The type of `dmaconf_plugin_entry`.
pub type dmaconf_plugin_entry_fn = unsafe extern "C" fn() -> *const dmaconf_plugin;

/// The name of the entry symbol (without NUL).
pub const DMACONF_ENTRY_SYMBOL: &str = "dmaconf_plugin_entry";

/// `struct_size` a plug-in table must reach for ABI major 1: through `iova_free`.
/// cbindgen:ignore
pub const DMACONF_PLUGIN_MIN_SIZE_V1: u32 =
    (std::mem::offset_of!(dmaconf_plugin, iova_free) + std::mem::size_of::<usize>()) as u32;
