//! The Rust reference as a C ABI plug-in: `libdmaconf_reference_c.so` exports
//! `dmaconf_plugin_entry` (`ffi/c/include/dmaconf.h`). Each device is a
//! [`dmaconf_reference::Reference`] whose platform is the host table it was created with, so the
//! same vectors run in process and through the C door with identical traces
//! (`ffi/c/tests/reference.rs`).
//!
//! The reverse of `dmaconf-c`: there the host offers a `Platform` to C; here C's host table
//! becomes a `Platform` for Rust. A panic never unwinds into the host: it aborts, which the
//! host sees as a crash (spec/8-c-abi.md § 8.8).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use dmaconf_c_abi::*;
use dmaconf_platform::{
    Arch, Attrs, Dir, DmaApi, DomainType, IovaState, PgtableBackend, Platform, PlatformFacts, Prot,
    Region, RegionKind, SgEntry, WarnCode,
};
use dmaconf_reference::Reference;

/// The host table and context a device was created with: the plug-in side's `Platform`.
struct HostPlatform {
    host: *const dmaconf_host,
    ctx: *mut c_void,
}

/// Calls a host member. The ABI makes every member of a major-1 host table non-NULL, and
/// `create` checked the table is a full major-1 one.
macro_rules! host {
    ($self:ident . $member:ident ( $($arg:expr),* )) => {{
        // SAFETY: the host table we were created with stays valid until `destroy` (the ABI's
        // rule); `create` checked it is a full major-1 table.
        let table = unsafe { &*$self.host };
        let f = table.$member.expect(concat!("host member ", stringify!($member)));
        // SAFETY: a member of that table, called during a host call into us, with the
        // `host_ctx` the host gave `create` (the ABI's rules).
        unsafe { f($self.ctx $(, $arg)*) }
    }};
}

fn arch(v: u32) -> Arch {
    match v {
        DMACONF_ARCH_ARM64 => Arch::Arm64,
        DMACONF_ARCH_RISCV => Arch::Riscv,
        DMACONF_ARCH_ARM => Arch::Arm,
        _ => Arch::X86,
    }
}

fn domain(v: u32) -> DomainType {
    match v {
        DMACONF_DOMAIN_NONE => DomainType::None,
        DMACONF_DOMAIN_IDENTITY => DomainType::Identity,
        DMACONF_DOMAIN_DMA_FQ => DomainType::DmaFq,
        _ => DomainType::Dma,
    }
}

fn region_kind(v: u32) -> RegionKind {
    match v {
        DMACONF_REGION_PCI_WINDOW => RegionKind::PciWindow,
        DMACONF_REGION_DMA_RANGE_GAP => RegionKind::DmaRangeGap,
        DMACONF_REGION_MSI => RegionKind::Msi,
        DMACONF_REGION_DIRECT => RegionKind::Direct,
        _ => RegionKind::Reserved,
    }
}

impl Platform for HostPlatform {
    fn facts(&self) -> PlatformFacts {
        let mut f = dmaconf_facts {
            struct_size: std::mem::size_of::<dmaconf_facts>() as u32,
            ..Default::default()
        };
        host!(self.facts(&mut f));
        PlatformFacts {
            arch: arch(f.arch),
            domain: domain(f.domain),
            backend: if f.backend == DMACONF_BACKEND_IO_PGTABLE_ARM {
                PgtableBackend::IoPgtableArm
            } else {
                PgtableBackend::Iommupt
            },
            pgsize_bitmap: f.pgsize_bitmap,
            aperture_start: f.aperture_start,
            aperture_end: f.aperture_end,
            force_aperture: f.force_aperture != 0,
            coherent: f.coherent != 0,
            untrusted: f.untrusted != 0,
            pci: f.pci != 0,
            forcedac: f.forcedac != 0,
            dma_mask: f.dma_mask,
            bus_dma_limit: f.bus_dma_limit,
            min_align_mask: f.min_align_mask,
            cache_line: f.cache_line,
            swiotlb: f.swiotlb != 0,
            kmalloc_bounce: f.kmalloc_bounce != 0,
            iommu_dma_config: f.iommu_dma_config != 0,
            nr_cpus: f.nr_cpus,
            msi_doorbell: f.msi_doorbell,
            max_seg_size: f.max_seg_size,
            seg_boundary_mask: f.seg_boundary_mask,
            swiotlb_force: f.swiotlb_force != 0,
            dma_offset: f.dma_offset,
            // A host of minor 0 does not write it: assume what its preset default says.
            write_only_pte: f.struct_size < std::mem::size_of::<dmaconf_facts>() as u32
                || f.write_only_pte != 0,
        }
    }
    fn reserved_region(&self, index: u32) -> Option<Region> {
        let mut r = dmaconf_region::default();
        (host!(self.reserved_region(index, &mut r)) == 0).then(|| Region {
            start: r.start,
            end: r.end,
            kind: region_kind(r.kind),
        })
    }
    fn current_cpu(&self) -> u32 {
        host!(self.current_cpu())
    }
    fn now_ns(&self) -> u64 {
        host!(self.now_ns())
    }
    fn iommu_map(&mut self, iova: u64, phys: u64, len: u64, prot: Prot) -> i32 {
        host!(self.iommu_map(iova, phys, len, prot.0))
    }
    fn iotlb_sync_map(&mut self, iova: u64, len: u64) -> i32 {
        host!(self.iotlb_sync_map(iova, len))
    }
    fn iommu_unmap(&mut self, iova: u64, len: u64) -> u64 {
        host!(self.iommu_unmap(iova, len))
    }
    fn iotlb_sync(&mut self, iova: u64, len: u64) {
        host!(self.iotlb_sync(iova, len))
    }
    fn flush_iotlb_all(&mut self) {
        host!(self.flush_iotlb_all())
    }
    fn iova_to_phys(&self, iova: u64) -> u64 {
        host!(self.iova_to_phys(iova))
    }
    fn sync_for_device(&mut self, phys: u64, len: u64, dir: Dir) {
        host!(self.sync_for_device(phys, len, dir.0))
    }
    fn sync_for_cpu(&mut self, phys: u64, len: u64, dir: Dir) {
        host!(self.sync_for_cpu(phys, len, dir.0))
    }
    fn sync_barrier(&mut self) {
        host!(self.sync_barrier())
    }
    fn bounce_alloc(
        &mut self,
        orig: u64,
        len: u64,
        alloc_align_mask: u64,
        min_align_mask: u64,
        slot: &mut u64,
    ) -> i32 {
        host!(self.bounce_alloc(orig, len, alloc_align_mask, min_align_mask, slot))
    }
    fn bounce_free(&mut self, slot: u64, len: u64) {
        host!(self.bounce_free(slot, len))
    }
    fn is_bounce(&self, phys: u64) -> bool {
        host!(self.is_bounce(phys)) != 0
    }
    fn bounce_orig(&self, phys: u64) -> u64 {
        host!(self.bounce_orig(phys))
    }
    fn copy(&mut self, dst: u64, src: u64, len: u64) {
        host!(self.copy(dst, src, len))
    }
    fn fill(&mut self, dst: u64, byte: u8, len: u64) {
        host!(self.fill(dst, byte, len))
    }
    fn p2p_type(&self, phys: u64) -> u32 {
        host!(self.p2p_type(phys))
    }
    fn p2p_bus_offset(&self, phys: u64) -> u64 {
        host!(self.p2p_bus_offset(phys))
    }
    fn warn(&mut self, code: WarnCode) {
        host!(self.warn(code.0))
    }
}

/// What `dmaconf_device` points at in this plug-in.
struct Device {
    reference: Reference,
    platform: HostPlatform,
}

/// Runs `f` on the device; a panic aborts instead of unwinding into the host.
///
/// # Safety
/// `dev` is a device this plug-in's `create` made and `destroy` has not freed (the ABI's rule).
unsafe fn with<T>(
    dev: *mut dmaconf_device,
    f: impl FnOnce(&mut Reference, &mut HostPlatform) -> T,
) -> T {
    // SAFETY: per this function's contract `dev` is our live `Box<Device>`, and the host makes
    // one call at a time, so this is the only reference to it.
    let d = unsafe { &mut *dev.cast::<Device>() };
    catch_unwind(AssertUnwindSafe(|| f(&mut d.reference, &mut d.platform)))
        .unwrap_or_else(|_| std::process::abort())
}

fn state(s: *const dmaconf_iova_state) -> IovaState {
    // SAFETY: the host lends a valid state for the call (the ABI's rule).
    let s = unsafe { *s };
    IovaState {
        addr: s.addr,
        size: s.size,
    }
}

fn put_state(out: *mut dmaconf_iova_state, s: IovaState) {
    // SAFETY: the host lends a valid, writable state for the call (the ABI's rule).
    unsafe {
        *out = dmaconf_iova_state {
            addr: s.addr,
            size: s.size,
        }
    };
}

/// The host's scatterlist as the platform's entries, and back.
fn segs_in(segs: *mut dmaconf_sg_entry, nents: u32) -> Vec<SgEntry> {
    if nents == 0 {
        return Vec::new();
    }
    // SAFETY: the host lends `nents` entries at `segs` for the call (the ABI's rule).
    let c = unsafe { std::slice::from_raw_parts(segs, nents as usize) };
    c.iter()
        .map(|e| SgEntry {
            phys: e.phys,
            len: e.len,
            dma_address: e.dma_address,
            dma_len: e.dma_len,
            flags: e.flags,
        })
        .collect()
}

fn segs_out(segs: *mut dmaconf_sg_entry, v: &[SgEntry]) {
    if v.is_empty() {
        return;
    }
    // SAFETY: as for `segs_in`; the host's array is writable and `v.len()` == `nents`.
    let c = unsafe { std::slice::from_raw_parts_mut(segs, v.len()) };
    for (c, e) in c.iter_mut().zip(v) {
        c.phys = e.phys;
        c.len = e.len;
        c.dma_address = e.dma_address;
        c.dma_len = e.dma_len;
        c.flags = e.flags;
    }
}

unsafe extern "C" fn create(
    host: *const dmaconf_host,
    host_ctx: *mut c_void,
    out: *mut *mut dmaconf_device,
) -> i32 {
    if host.is_null() || out.is_null() {
        return -DMACONF_EINVAL;
    }
    // SAFETY: non-NULL; the ABI keeps the host table valid until `destroy` returns.
    let table = unsafe { &*host };
    if table.abi_major != DMACONF_ABI_MAJOR
        || (table.struct_size as usize) < std::mem::size_of::<dmaconf_host>()
    {
        return -DMACONF_EINVAL;
    }
    let device = Box::new(Device {
        reference: Reference::new(),
        platform: HostPlatform {
            host,
            ctx: host_ctx,
        },
    });
    // SAFETY: `out` is non-NULL and the host's to write (the ABI's rule).
    unsafe { *out = Box::into_raw(device).cast::<dmaconf_device>() };
    0
}

unsafe extern "C" fn destroy(dev: *mut dmaconf_device) {
    if !dev.is_null() {
        // SAFETY: `dev` came from `Box::into_raw` in `create`; the host destroys it once.
        drop(unsafe { Box::from_raw(dev.cast::<Device>()) });
    }
}

unsafe extern "C" fn probe(dev: *mut dmaconf_device) -> i32 {
    // SAFETY: `dev` from our `create` (the ABI's rule), as for every function below.
    unsafe { with(dev, |r, p| r.probe(p)) }
}

unsafe extern "C" fn iova_try_alloc(
    dev: *mut dmaconf_device,
    st: *mut dmaconf_iova_state,
    phys: u64,
    size: u64,
) -> u32 {
    let mut s = state(st);
    // SAFETY: `dev` from our `create`.
    let ok = unsafe { with(dev, |r, p| r.iova_try_alloc(p, &mut s, phys, size)) };
    put_state(st, s);
    ok.into()
}

unsafe extern "C" fn iova_link(
    dev: *mut dmaconf_device,
    st: *mut dmaconf_iova_state,
    phys: u64,
    offset: u64,
    size: u64,
    dir: u32,
    attrs: u64,
) -> i32 {
    let mut s = state(st);
    // SAFETY: `dev` from our `create`.
    let ret = unsafe {
        with(dev, |r, p| {
            r.iova_link(p, &mut s, phys, offset, size, Dir(dir), Attrs(attrs))
        })
    };
    put_state(st, s);
    ret
}

unsafe extern "C" fn iova_sync(
    dev: *mut dmaconf_device,
    st: *const dmaconf_iova_state,
    offset: u64,
    size: u64,
) -> i32 {
    let s = state(st);
    // SAFETY: `dev` from our `create`.
    unsafe { with(dev, |r, p| r.iova_sync(p, &s, offset, size)) }
}

unsafe extern "C" fn iova_unlink(
    dev: *mut dmaconf_device,
    st: *const dmaconf_iova_state,
    offset: u64,
    size: u64,
    dir: u32,
    attrs: u64,
) {
    let s = state(st);
    // SAFETY: `dev` from our `create`.
    unsafe {
        with(dev, |r, p| {
            r.iova_unlink(p, &s, offset, size, Dir(dir), Attrs(attrs))
        })
    }
}

unsafe extern "C" fn iova_destroy(
    dev: *mut dmaconf_device,
    st: *const dmaconf_iova_state,
    mapped_len: u64,
    dir: u32,
    attrs: u64,
) {
    let s = state(st);
    // SAFETY: `dev` from our `create`.
    unsafe {
        with(dev, |r, p| {
            r.iova_destroy(p, &s, mapped_len, Dir(dir), Attrs(attrs))
        })
    }
}

unsafe extern "C" fn iova_free(dev: *mut dmaconf_device, st: *const dmaconf_iova_state) {
    let s = state(st);
    // SAFETY: `dev` from our `create`.
    unsafe { with(dev, |r, p| r.iova_free(p, &s)) }
}

unsafe extern "C" fn use_iova(dev: *mut dmaconf_device, st: *const dmaconf_iova_state) -> u32 {
    let s = state(st);
    // SAFETY: `dev` from our `create`.
    unsafe { with(dev, |r, _| r.use_iova(&s)) }.into()
}

unsafe extern "C" fn iova_size(dev: *mut dmaconf_device, st: *const dmaconf_iova_state) -> u64 {
    let s = state(st);
    // SAFETY: `dev` from our `create`.
    unsafe { with(dev, |r, _| r.iova_size(&s)) }
}

unsafe extern "C" fn map_phys(
    dev: *mut dmaconf_device,
    phys: u64,
    size: u64,
    dir: u32,
    attrs: u64,
) -> u64 {
    // SAFETY: `dev` from our `create`.
    unsafe {
        with(dev, |r, p| {
            r.map_phys(p, phys, size, Dir(dir), Attrs(attrs))
        })
    }
}

unsafe extern "C" fn unmap_phys(
    dev: *mut dmaconf_device,
    addr: u64,
    size: u64,
    dir: u32,
    attrs: u64,
) {
    // SAFETY: `dev` from our `create`.
    unsafe {
        with(dev, |r, p| {
            r.unmap_phys(p, addr, size, Dir(dir), Attrs(attrs))
        })
    }
}

unsafe extern "C" fn sync_single_for_cpu(dev: *mut dmaconf_device, addr: u64, size: u64, dir: u32) {
    // SAFETY: `dev` from our `create`.
    unsafe { with(dev, |r, p| r.sync_single_for_cpu(p, addr, size, Dir(dir))) }
}

unsafe extern "C" fn sync_single_for_device(
    dev: *mut dmaconf_device,
    addr: u64,
    size: u64,
    dir: u32,
) {
    // SAFETY: `dev` from our `create`.
    unsafe {
        with(dev, |r, p| {
            r.sync_single_for_device(p, addr, size, Dir(dir))
        })
    }
}

unsafe extern "C" fn map_sg(
    dev: *mut dmaconf_device,
    segs: *mut dmaconf_sg_entry,
    nents: u32,
    dir: u32,
    attrs: u64,
) -> i32 {
    let mut v = segs_in(segs, nents);
    // SAFETY: `dev` from our `create`.
    let ret = unsafe { with(dev, |r, p| r.map_sg(p, &mut v, Dir(dir), Attrs(attrs))) };
    segs_out(segs, &v);
    ret
}

unsafe extern "C" fn unmap_sg(
    dev: *mut dmaconf_device,
    segs: *mut dmaconf_sg_entry,
    nents: u32,
    dir: u32,
    attrs: u64,
) {
    let mut v = segs_in(segs, nents);
    // SAFETY: `dev` from our `create`.
    unsafe { with(dev, |r, p| r.unmap_sg(p, &mut v, Dir(dir), Attrs(attrs))) };
    segs_out(segs, &v);
}

unsafe extern "C" fn need_unmap(dev: *mut dmaconf_device) -> u32 {
    // SAFETY: `dev` from our `create`.
    unsafe { with(dev, |r, p| r.need_unmap(p)) }.into()
}

unsafe extern "C" fn need_sync(dev: *mut dmaconf_device, addr: u64) -> u32 {
    // SAFETY: `dev` from our `create`.
    unsafe { with(dev, |r, p| r.need_sync(p, addr)) }.into()
}

unsafe extern "C" fn map_page_attrs(
    dev: *mut dmaconf_device,
    phys: u64,
    size: u64,
    dir: u32,
    attrs: u64,
) -> u64 {
    // SAFETY: `dev` from our `create`.
    unsafe {
        with(dev, |r, p| {
            r.map_page_attrs(p, phys, size, Dir(dir), Attrs(attrs))
        })
    }
}

unsafe extern "C" fn unmap_page_attrs(
    dev: *mut dmaconf_device,
    addr: u64,
    size: u64,
    dir: u32,
    attrs: u64,
) {
    // SAFETY: `dev` from our `create`.
    unsafe {
        with(dev, |r, p| {
            r.unmap_page_attrs(p, addr, size, Dir(dir), Attrs(attrs))
        })
    }
}

unsafe extern "C" fn map_resource(
    dev: *mut dmaconf_device,
    phys: u64,
    size: u64,
    dir: u32,
    attrs: u64,
) -> u64 {
    // SAFETY: `dev` from our `create`.
    unsafe {
        with(dev, |r, p| {
            r.map_resource(p, phys, size, Dir(dir), Attrs(attrs))
        })
    }
}

unsafe extern "C" fn unmap_resource(
    dev: *mut dmaconf_device,
    addr: u64,
    size: u64,
    dir: u32,
    attrs: u64,
) {
    // SAFETY: `dev` from our `create`.
    unsafe {
        with(dev, |r, p| {
            r.unmap_resource(p, addr, size, Dir(dir), Attrs(attrs))
        })
    }
}

unsafe extern "C" fn advance_time(dev: *mut dmaconf_device, now_ns: u64) {
    // SAFETY: `dev` from our `create`.
    unsafe { with(dev, |r, p| r.advance_time(p, now_ns)) }
}

/// The table in a `static`: it holds raw pointers (to `'static` strings), which Rust does not
/// mark `Sync` on its own.
#[repr(transparent)]
struct Table(dmaconf_plugin);

// SAFETY: the table is never written after initialisation, and its pointers are to `'static`
// string literals and functions, so sharing it between threads is sound.
unsafe impl Sync for Table {}

static TABLE: Table = Table(dmaconf_plugin {
    struct_size: std::mem::size_of::<dmaconf_plugin>() as u32,
    abi_major: DMACONF_ABI_MAJOR,
    abi_minor: DMACONF_ABI_MINOR,
    reserved: 0,
    name: c"reference-c".as_ptr(),
    version: c"0.1.0".as_ptr(),
    capabilities: DMACONF_CAP_IOVA_API
        | DMACONF_CAP_STREAMING
        | DMACONF_CAP_SG
        | DMACONF_CAP_LINUX_EXACT,
    create: Some(create),
    destroy: Some(destroy),
    probe: Some(probe),
    iova_try_alloc: Some(iova_try_alloc),
    iova_link: Some(iova_link),
    iova_sync: Some(iova_sync),
    iova_unlink: Some(iova_unlink),
    iova_destroy: Some(iova_destroy),
    iova_free: Some(iova_free),
    use_iova: Some(use_iova),
    iova_size: Some(iova_size),
    map_phys: Some(map_phys),
    unmap_phys: Some(unmap_phys),
    sync_single_for_cpu: Some(sync_single_for_cpu),
    sync_single_for_device: Some(sync_single_for_device),
    map_sg: Some(map_sg),
    unmap_sg: Some(unmap_sg),
    need_unmap: Some(need_unmap),
    need_sync: Some(need_sync),
    map_page_attrs: Some(map_page_attrs),
    unmap_page_attrs: Some(unmap_page_attrs),
    map_resource: Some(map_resource),
    unmap_resource: Some(unmap_resource),
    advance_time: Some(advance_time),
});

/// The entry point (`dmaconf_plugin_entry` in `dmaconf.h`).
///
/// # Safety
/// None beyond the ABI's: it only returns the address of a static.
#[no_mangle]
pub extern "C" fn dmaconf_plugin_entry() -> *const dmaconf_plugin {
    &TABLE.0
}
