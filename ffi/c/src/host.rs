//! The host table: the `Platform` of the current call, offered to C (`struct dmaconf_host`).
//!
//! `host_ctx` is a [`HostCell`]. While the host is inside a call into the plug-in, the cell
//! points at that call's `&mut dyn Platform`; outside, it points nowhere and any callback is a
//! violation. Every callback checks what it can (`spec/8-c-abi.md` § 8.9), runs the
//! platform under `catch_unwind` (nothing unwinds into C), and on a violation records it in the
//! cell and returns a refusal value; the device then ends the run (`device.rs`).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use dmaconf_c_abi::*;
use dmaconf_platform::{Dir, Platform, PlatformFacts, Prot, WarnCode};

/// The state behind `host_ctx`, one per device, at a fixed address (boxed) for the device's
/// life.
pub(crate) struct HostCell {
    /// During a plug-in call: a pointer to that call's `&mut dyn Platform`; NULL otherwise.
    pub platform: *mut c_void,
    /// The first violation of the current call.
    pub violation: Option<String>,
}

/// The host table handed to every `create`. Static: it holds only function pointers.
pub(crate) static HOST: dmaconf_host = dmaconf_host {
    struct_size: std::mem::size_of::<dmaconf_host>() as u32,
    abi_major: DMACONF_ABI_MAJOR,
    abi_minor: DMACONF_ABI_MINOR,
    reserved: 0,
    facts: Some(facts),
    reserved_region: Some(reserved_region),
    current_cpu: Some(current_cpu),
    now_ns: Some(now_ns),
    iommu_map: Some(iommu_map),
    iotlb_sync_map: Some(iotlb_sync_map),
    iommu_unmap: Some(iommu_unmap),
    iotlb_sync: Some(iotlb_sync),
    flush_iotlb_all: Some(flush_iotlb_all),
    iova_to_phys: Some(iova_to_phys),
    sync_for_device: Some(sync_for_device),
    sync_for_cpu: Some(sync_for_cpu),
    sync_barrier: Some(sync_barrier),
    bounce_alloc: Some(bounce_alloc),
    bounce_free: Some(bounce_free),
    is_bounce: Some(is_bounce),
    bounce_orig: Some(bounce_orig),
    copy: Some(copy),
    fill: Some(fill),
    p2p_type: Some(p2p_type),
    p2p_bus_offset: Some(p2p_bus_offset),
    warn: Some(warn),
};

/// Runs `f` on the current call's platform, or records why it cannot and returns `refused`.
///
/// `ctx` must be NULL or the `host_ctx` the host gave this device's `create`: the ABI binds the
/// plug-in to that (a plug-in that passes anything else is outside it and cannot be defended
/// against in process; isolated mode exists for that).
fn enter<T>(
    ctx: *mut c_void,
    call: &'static str,
    refused: T,
    f: impl FnOnce(&mut dyn Platform) -> Result<T, String>,
) -> T {
    if ctx.is_null() {
        return refused;
    }
    // SAFETY: by the ABI's rule above, `ctx` is the device's boxed `HostCell`, alive until
    // the device is dropped; no other reference to it exists while the plug-in runs (the device
    // touches it only through the raw pointer, before and after the call).
    let cell = unsafe { &mut *ctx.cast::<HostCell>() };
    if cell.violation.is_some() {
        return refused;
    }
    if cell.platform.is_null() {
        cell.violation = Some(format!(
            "`{call}` called outside a call the host made into the plug-in"
        ));
        return refused;
    }
    // SAFETY: `platform` points at the `&mut dyn Platform` local of the device method that is
    // running the plug-in call on this thread (it is reset to NULL when the call returns), and
    // callbacks do not nest, so this is the only live use of it.
    let platform: &mut dyn Platform = unsafe { &mut **cell.platform.cast::<&mut dyn Platform>() };
    match catch_unwind(AssertUnwindSafe(|| f(platform))) {
        Ok(Ok(v)) => v,
        Ok(Err(why)) => {
            cell.violation = Some(format!("`{call}`: {why}"));
            refused
        }
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            cell.violation = Some(format!("`{call}`: the host panicked: {text}"));
            refused
        }
    }
}

/// `[start, start+len)` must not wrap past 2^64 (a range ending exactly at 2^64 is fine).
fn span(what: &str, start: u64, len: u64) -> Result<(), String> {
    if u128::from(start) + u128::from(len) > 1u128 << 64 {
        Err(format!(
            "{what} range {start:#x} + {len:#x} wraps past the end of the address space"
        ))
    } else {
        Ok(())
    }
}

fn not_null<T>(what: &str, p: *mut T) -> Result<(), String> {
    if p.is_null() {
        Err(format!("`{what}` is NULL"))
    } else {
        Ok(())
    }
}

/// The facts as the ABI spells them: `u32` for enums and booleans.
pub(crate) fn c_facts(f: &PlatformFacts) -> dmaconf_facts {
    dmaconf_facts {
        struct_size: std::mem::size_of::<dmaconf_facts>() as u32,
        arch: f.arch as u32,
        domain: f.domain as u32,
        backend: f.backend as u32,
        pgsize_bitmap: f.pgsize_bitmap,
        aperture_start: f.aperture_start,
        aperture_end: f.aperture_end,
        force_aperture: f.force_aperture.into(),
        coherent: f.coherent.into(),
        untrusted: f.untrusted.into(),
        pci: f.pci.into(),
        forcedac: f.forcedac.into(),
        swiotlb: f.swiotlb.into(),
        dma_mask: f.dma_mask,
        bus_dma_limit: f.bus_dma_limit,
        min_align_mask: f.min_align_mask,
        cache_line: f.cache_line,
        kmalloc_bounce: f.kmalloc_bounce.into(),
        iommu_dma_config: f.iommu_dma_config.into(),
        nr_cpus: f.nr_cpus,
        max_seg_size: f.max_seg_size,
        msi_doorbell: f.msi_doorbell,
        seg_boundary_mask: f.seg_boundary_mask,
        swiotlb_force: f.swiotlb_force.into(),
        reserved: 0,
        dma_offset: f.dma_offset,
        write_only_pte: f.write_only_pte.into(),
        reserved2: 0,
    }
}

unsafe extern "C" fn facts(ctx: *mut c_void, out: *mut dmaconf_facts) -> i32 {
    enter(ctx, "facts", -DMACONF_EINVAL, |p| {
        not_null("out", out)?;
        // SAFETY: non-NULL; the ABI makes `out` the plug-in's `dmaconf_facts`, whose first
        // member it set to the bytes it provides.
        let room = unsafe { (*out).struct_size } as usize;
        if room < 8 {
            return Err(format!("`out->struct_size` is {room}, less than 8"));
        }
        let full = c_facts(&p.facts());
        let n = room.min(std::mem::size_of::<dmaconf_facts>());
        // SAFETY: `out` has `room` >= `n` writable bytes (the plug-in's promise), and the
        // source is our own value of at least `n` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&full as *const dmaconf_facts).cast::<u8>(),
                out.cast::<u8>(),
                n,
            );
            (*out).struct_size = n as u32;
        }
        Ok(0)
    })
}

unsafe extern "C" fn reserved_region(
    ctx: *mut c_void,
    index: u32,
    out: *mut dmaconf_region,
) -> i32 {
    enter(ctx, "reserved_region", -DMACONF_EINVAL, |p| {
        not_null("out", out)?;
        Ok(match p.reserved_region(index) {
            None => -DMACONF_ENOENT,
            Some(r) => {
                // SAFETY: non-NULL, the plug-in's `dmaconf_region` (the ABI's rule).
                unsafe {
                    *out = dmaconf_region {
                        start: r.start,
                        end: r.end,
                        kind: r.kind as u32,
                        reserved: 0,
                    }
                };
                0
            }
        })
    })
}

unsafe extern "C" fn current_cpu(ctx: *mut c_void) -> u32 {
    enter(ctx, "current_cpu", 0, |p| Ok(p.current_cpu()))
}

unsafe extern "C" fn now_ns(ctx: *mut c_void) -> u64 {
    enter(ctx, "now_ns", 0, |p| Ok(p.now_ns()))
}

unsafe extern "C" fn iommu_map(ctx: *mut c_void, iova: u64, phys: u64, len: u64, prot: u32) -> i32 {
    enter(ctx, "iommu_map", -DMACONF_EINVAL, |p| {
        span("iova", iova, len)?;
        span("phys", phys, len)?;
        Ok(p.iommu_map(iova, phys, len, Prot(prot)))
    })
}

unsafe extern "C" fn iotlb_sync_map(ctx: *mut c_void, iova: u64, len: u64) -> i32 {
    enter(ctx, "iotlb_sync_map", -DMACONF_EINVAL, |p| {
        span("iova", iova, len)?;
        Ok(p.iotlb_sync_map(iova, len))
    })
}

unsafe extern "C" fn iommu_unmap(ctx: *mut c_void, iova: u64, len: u64) -> u64 {
    enter(ctx, "iommu_unmap", 0, |p| {
        span("iova", iova, len)?;
        Ok(p.iommu_unmap(iova, len))
    })
}

unsafe extern "C" fn iotlb_sync(ctx: *mut c_void, iova: u64, len: u64) {
    enter(ctx, "iotlb_sync", (), |p| {
        span("iova", iova, len)?;
        p.iotlb_sync(iova, len);
        Ok(())
    })
}

unsafe extern "C" fn flush_iotlb_all(ctx: *mut c_void) {
    enter(ctx, "flush_iotlb_all", (), |p| {
        p.flush_iotlb_all();
        Ok(())
    })
}

unsafe extern "C" fn iova_to_phys(ctx: *mut c_void, iova: u64) -> u64 {
    enter(ctx, "iova_to_phys", 0, |p| Ok(p.iova_to_phys(iova)))
}

unsafe extern "C" fn sync_for_device(ctx: *mut c_void, phys: u64, len: u64, dir: u32) {
    enter(ctx, "sync_for_device", (), |p| {
        span("phys", phys, len)?;
        p.sync_for_device(phys, len, Dir(dir));
        Ok(())
    })
}

unsafe extern "C" fn sync_for_cpu(ctx: *mut c_void, phys: u64, len: u64, dir: u32) {
    enter(ctx, "sync_for_cpu", (), |p| {
        span("phys", phys, len)?;
        p.sync_for_cpu(phys, len, Dir(dir));
        Ok(())
    })
}

unsafe extern "C" fn sync_barrier(ctx: *mut c_void) {
    enter(ctx, "sync_barrier", (), |p| {
        p.sync_barrier();
        Ok(())
    })
}

unsafe extern "C" fn bounce_alloc(
    ctx: *mut c_void,
    orig: u64,
    len: u64,
    alloc_align_mask: u64,
    min_align_mask: u64,
    slot: *mut u64,
) -> i32 {
    enter(ctx, "bounce_alloc", -DMACONF_EINVAL, |p| {
        not_null("slot", slot)?;
        span("orig", orig, len)?;
        let mut out = 0;
        let ret = p.bounce_alloc(orig, len, alloc_align_mask, min_align_mask, &mut out);
        if ret == 0 {
            // SAFETY: non-NULL, the plug-in's `uint64_t` (the ABI's rule).
            unsafe { *slot = out };
        }
        Ok(ret)
    })
}

unsafe extern "C" fn bounce_free(ctx: *mut c_void, slot: u64, len: u64) {
    enter(ctx, "bounce_free", (), |p| {
        span("slot", slot, len)?;
        // Linux releases slots only for addresses inside a pool (`swiotlb_find_pool`).
        if !p.is_bounce(slot) {
            return Err(format!("slot {slot:#x} is in no bounce pool"));
        }
        p.bounce_free(slot, len);
        Ok(())
    })
}

unsafe extern "C" fn is_bounce(ctx: *mut c_void, phys: u64) -> u32 {
    enter(ctx, "is_bounce", 0, |p| Ok(p.is_bounce(phys).into()))
}

unsafe extern "C" fn bounce_orig(ctx: *mut c_void, phys: u64) -> u64 {
    enter(ctx, "bounce_orig", 0, |p| Ok(p.bounce_orig(phys)))
}

unsafe extern "C" fn copy(ctx: *mut c_void, dst: u64, src: u64, len: u64) {
    enter(ctx, "copy", (), |p| {
        span("dst", dst, len)?;
        span("src", src, len)?;
        p.copy(dst, src, len);
        Ok(())
    })
}

unsafe extern "C" fn fill(ctx: *mut c_void, dst: u64, byte: u8, len: u64) {
    enter(ctx, "fill", (), |p| {
        span("dst", dst, len)?;
        p.fill(dst, byte, len);
        Ok(())
    })
}

unsafe extern "C" fn p2p_type(ctx: *mut c_void, phys: u64) -> u32 {
    enter(ctx, "p2p_type", DMACONF_P2P_UNKNOWN, |p| {
        Ok(p.p2p_type(phys))
    })
}

unsafe extern "C" fn p2p_bus_offset(ctx: *mut c_void, phys: u64) -> u64 {
    enter(ctx, "p2p_bus_offset", 0, |p| Ok(p.p2p_bus_offset(phys)))
}

unsafe extern "C" fn warn(ctx: *mut c_void, code: u32) {
    enter(ctx, "warn", (), |p| {
        p.warn(WarnCode(code));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmaconf_platform::Region;

    /// A platform whose every call panics, as a host bug would.
    struct Panicking;

    impl Platform for Panicking {
        fn facts(&self) -> PlatformFacts {
            panic!("boom: facts")
        }
        fn reserved_region(&self, _: u32) -> Option<Region> {
            panic!("boom")
        }
        fn current_cpu(&self) -> u32 {
            panic!("boom")
        }
        fn iommu_map(&mut self, _: u64, _: u64, _: u64, _: Prot) -> i32 {
            panic!("boom: iommu_map")
        }
        fn iotlb_sync_map(&mut self, _: u64, _: u64) -> i32 {
            panic!("boom")
        }
        fn iommu_unmap(&mut self, _: u64, _: u64) -> u64 {
            panic!("boom")
        }
        fn iotlb_sync(&mut self, _: u64, _: u64) {
            panic!("boom")
        }
        fn flush_iotlb_all(&mut self) {
            panic!("boom")
        }
        fn iova_to_phys(&self, _: u64) -> u64 {
            panic!("boom")
        }
        fn sync_for_device(&mut self, _: u64, _: u64, _: Dir) {
            panic!("boom")
        }
        fn sync_for_cpu(&mut self, _: u64, _: u64, _: Dir) {
            panic!("boom")
        }
        fn sync_barrier(&mut self) {
            panic!("boom")
        }
        fn bounce_alloc(&mut self, _: u64, _: u64, _: u64, _: u64, _: &mut u64) -> i32 {
            panic!("boom")
        }
        fn bounce_free(&mut self, _: u64, _: u64) {
            panic!("boom")
        }
        fn is_bounce(&self, _: u64) -> bool {
            panic!("boom")
        }
        fn bounce_orig(&self, _: u64) -> u64 {
            panic!("boom")
        }
        fn copy(&mut self, _: u64, _: u64, _: u64) {
            panic!("boom")
        }
        fn fill(&mut self, _: u64, _: u8, _: u64) {
            panic!("boom")
        }
        fn warn(&mut self, _: WarnCode) {
            panic!("boom")
        }
    }

    #[test]
    fn a_host_panic_becomes_a_refusal_and_a_violation_never_an_unwind() {
        let mut platform = Panicking;
        let mut lent: &mut dyn Platform = &mut platform;
        let mut cell = HostCell {
            platform: (&mut lent as *mut &mut dyn Platform).cast::<c_void>(),
            violation: None,
        };
        let ctx = (&mut cell as *mut HostCell).cast::<c_void>();
        let map = HOST.iommu_map.expect("the host table is full");
        // SAFETY: `ctx` is a live HostCell lending a live platform, as during a plug-in call.
        let ret = unsafe { map(ctx, 0x1000, 0x2000, 0x1000, DMACONF_PROT_READ) };
        assert_eq!(ret, -DMACONF_EINVAL);
        let v = cell.violation.take().expect("recorded");
        assert!(
            v.contains("`iommu_map`: the host panicked: boom: iommu_map"),
            "{v}"
        );
    }

    #[test]
    fn a_callback_outside_a_host_call_is_a_violation() {
        let mut cell = HostCell {
            platform: std::ptr::null_mut(),
            violation: None,
        };
        let ctx = (&mut cell as *mut HostCell).cast::<c_void>();
        let now = HOST.now_ns.expect("the host table is full");
        // SAFETY: `ctx` is a live HostCell with no platform lent, as between plug-in calls.
        assert_eq!(unsafe { now(ctx) }, 0);
        let v = cell.violation.take().expect("recorded");
        assert!(
            v.contains("`now_ns` called outside a call the host made"),
            "{v}"
        );
    }
}
