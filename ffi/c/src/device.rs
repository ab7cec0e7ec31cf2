//! One plug-in device as a `DmaApi`: each method lends its `&mut dyn Platform` to the host
//! table for the duration of one call into C (`host.rs`), and keeps the `DmaApi` defaults for
//! the optional members the plug-in left NULL (`spec/8-c-abi.md` § 8.4).

use std::ffi::c_void;
use std::sync::Arc;

use dmaconf_c_abi::{dmaconf_device, dmaconf_iova_state, dmaconf_plugin, dmaconf_sg_entry};
use dmaconf_engine::fault::{DoorFault, FaultKind};
use dmaconf_platform::{
    dma_iova_size, dma_use_iova, errno, Attrs, Dir, DmaApi, IovaState, Platform, SgEntry,
    DMA_MAPPING_ERROR,
};

use crate::host::{HostCell, HOST};
use crate::load::Plugin;

pub(crate) struct CDevice {
    plugin: Arc<Plugin>,
    /// `host_ctx`: a `Box<HostCell>` turned raw, so the plug-in's callbacks and this device
    /// never hold references to it at the same time. Freed in `drop`.
    cell: *mut HostCell,
    /// The plug-in's device; NULL until `create` ran (at the first call, `probe`).
    dev: *mut dmaconf_device,
}

fn c_state(s: &IovaState) -> dmaconf_iova_state {
    dmaconf_iova_state {
        addr: s.addr,
        size: s.size,
    }
}

fn c_segs(segs: &[SgEntry]) -> Vec<dmaconf_sg_entry> {
    segs.iter()
        .map(|s| dmaconf_sg_entry {
            phys: s.phys,
            len: s.len,
            dma_address: s.dma_address,
            dma_len: s.dma_len,
            flags: s.flags,
            reserved: 0,
        })
        .collect()
}

fn write_back(segs: &mut [SgEntry], c: &[dmaconf_sg_entry]) {
    for (s, c) in segs.iter_mut().zip(c) {
        *s = SgEntry {
            phys: c.phys,
            len: c.len,
            dma_address: c.dma_address,
            dma_len: c.dma_len,
            flags: c.flags,
        };
    }
}

impl CDevice {
    pub fn new(plugin: Arc<Plugin>) -> CDevice {
        CDevice {
            plugin,
            cell: Box::into_raw(Box::new(HostCell {
                platform: std::ptr::null_mut(),
                violation: None,
            })),
            dev: std::ptr::null_mut(),
        }
    }

    fn table(&self) -> &dmaconf_plugin {
        &self.plugin.table
    }

    /// Runs one call into the plug-in with `p` lent to the host table. Creates the device
    /// first when needed. A violation the host caught ends the run: it is recorded for the door and
    /// raised as a panic, which the engine turns into the end of this run.
    fn call<T>(
        &mut self,
        p: &mut dyn Platform,
        name: &'static str,
        f: impl FnOnce(&dmaconf_plugin, *mut dmaconf_device) -> T,
    ) -> T {
        let plugin = self.plugin.clone();
        let calls = plugin.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut lent: &mut dyn Platform = p;
        let lent_ptr = (&mut lent as *mut &mut dyn Platform).cast::<c_void>();
        // SAFETY: `cell` is our live box; no callback runs now (we are outside any C call). A
        // violation left by `use_iova` / `iova_size` (no platform lent) stays, and ends this call.
        unsafe { (*self.cell).platform = lent_ptr };
        let mut failure = None;
        if self.dev.is_null() {
            failure = self.create();
        }
        let out = (failure.is_none()).then(|| f(&self.plugin.table, self.dev));
        // SAFETY: the C call has returned; nothing else refers to the cell.
        let violation = unsafe {
            (*self.cell).platform = std::ptr::null_mut();
            (*self.cell).violation.take()
        };
        drop(calls);
        let failure = failure.or(violation.map(|v| format!("broke the C ABI in `{name}`: {v}")));
        match (out, failure) {
            (Some(out), None) => out,
            (_, Some(why)) => {
                let msg = format!("plug-in `{}` {why}", self.plugin.name);
                self.plugin
                    .violations
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(msg.clone());
                // The plug-in broke the ABI contract: a harness error for the vector (spec/8-c-abi.md),
                // raised as the engine's typed door fault (no panic hook message).
                DoorFault::new(FaultKind::Harness, msg).raise()
            }
            (None, None) => unreachable!("a call is skipped only for a failure"),
        }
    }

    /// `create`, called with the platform already lent. Returns why it failed, if it did.
    fn create(&mut self) -> Option<String> {
        let create = self.table().create?;
        let mut out: *mut dmaconf_device = std::ptr::null_mut();
        // SAFETY: `create` is the plug-in's, checked non-NULL at load; `HOST` is static and
        // `cell` lives until after `destroy` (drop order in `Drop`); `out` is our local.
        let rc = unsafe { create(&HOST, self.cell.cast::<c_void>(), &mut out) };
        // SAFETY: the C call has returned; nothing else refers to the cell.
        if let Some(v) = unsafe { (*self.cell).violation.take() } {
            return Some(format!("broke the C ABI in `create`: {v}"));
        }
        match (rc, out.is_null()) {
            (0, false) => {
                self.dev = out;
                None
            }
            (0, true) => Some("`create` returned 0 but no device".into()),
            (e, _) => Some(format!("`create` failed with {}", errno::name(e))),
        }
    }
}

impl Drop for CDevice {
    fn drop(&mut self) {
        if !self.dev.is_null() {
            if let Some(destroy) = self.table().destroy {
                let _calls = self.plugin.calls.lock().unwrap_or_else(|e| e.into_inner());
                // SAFETY: `dev` came from this plug-in's `create` and is destroyed once; the
                // cell's platform is NULL, so a callback during destroy is refused.
                unsafe { destroy(self.dev) };
            }
        }
        // SAFETY: `cell` came from `Box::into_raw` in `new` and is freed once, after the
        // plug-in let go of it (`destroy` returned).
        drop(unsafe { Box::from_raw(self.cell) });
    }
}

impl DmaApi for CDevice {
    fn probe(&mut self, p: &mut dyn Platform) -> i32 {
        self.call(p, "probe", |t, dev| match t.probe {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => unsafe { f(dev) },
            None => -errno::EINVAL,
        })
    }

    fn iova_try_alloc(
        &mut self,
        p: &mut dyn Platform,
        state: &mut IovaState,
        phys: u64,
        size: u64,
    ) -> bool {
        let mut s = c_state(state);
        let ok = self.call(p, "iova_try_alloc", |t, dev| match t.iova_try_alloc {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => (unsafe { f(dev, &mut s, phys, size) }) != 0,
            None => false,
        });
        *state = IovaState {
            addr: s.addr,
            size: s.size,
        };
        ok
    }

    fn iova_link(
        &mut self,
        p: &mut dyn Platform,
        state: &mut IovaState,
        phys: u64,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> i32 {
        let mut s = c_state(state);
        let ret = self.call(p, "iova_link", |t, dev| match t.iova_link {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => unsafe { f(dev, &mut s, phys, offset, size, dir.0, attrs.0) },
            None => -errno::EOPNOTSUPP,
        });
        *state = IovaState {
            addr: s.addr,
            size: s.size,
        };
        ret
    }

    fn iova_sync(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        offset: u64,
        size: u64,
    ) -> i32 {
        let s = c_state(state);
        self.call(p, "iova_sync", |t, dev| match t.iova_sync {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => unsafe { f(dev, &s, offset, size) },
            None => -errno::EOPNOTSUPP,
        })
    }

    fn iova_unlink(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        let s = c_state(state);
        self.call(p, "iova_unlink", |t, dev| {
            if let Some(f) = t.iova_unlink {
                // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
                unsafe { f(dev, &s, offset, size, dir.0, attrs.0) }
            }
        })
    }

    fn iova_destroy(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        mapped_len: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        let s = c_state(state);
        self.call(p, "iova_destroy", |t, dev| {
            if let Some(f) = t.iova_destroy {
                // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
                unsafe { f(dev, &s, mapped_len, dir.0, attrs.0) }
            }
        })
    }

    fn iova_free(&mut self, p: &mut dyn Platform, state: &IovaState) {
        let s = c_state(state);
        self.call(p, "iova_free", |t, dev| {
            if let Some(f) = t.iova_free {
                // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
                unsafe { f(dev, &s) }
            }
        })
    }

    fn map_phys(
        &mut self,
        p: &mut dyn Platform,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        self.call(p, "map_phys", |t, dev| match t.map_phys {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => unsafe { f(dev, phys, size, dir.0, attrs.0) },
            // DmaApi's default.
            None => DMA_MAPPING_ERROR,
        })
    }

    fn unmap_phys(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir, attrs: Attrs) {
        self.call(p, "unmap_phys", |t, dev| {
            if let Some(f) = t.unmap_phys {
                // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
                unsafe { f(dev, addr, size, dir.0, attrs.0) }
            }
        })
    }

    fn sync_single_for_cpu(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir) {
        self.call(p, "sync_single_for_cpu", |t, dev| {
            if let Some(f) = t.sync_single_for_cpu {
                // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
                unsafe { f(dev, addr, size, dir.0) }
            }
        })
    }

    fn sync_single_for_device(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir) {
        self.call(p, "sync_single_for_device", |t, dev| {
            if let Some(f) = t.sync_single_for_device {
                // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
                unsafe { f(dev, addr, size, dir.0) }
            }
        })
    }

    fn map_sg(
        &mut self,
        p: &mut dyn Platform,
        segs: &mut [SgEntry],
        dir: Dir,
        attrs: Attrs,
    ) -> i32 {
        let Ok(nents) = u32::try_from(segs.len()) else {
            return -errno::EINVAL;
        };
        let mut c = c_segs(segs);
        let ret = self.call(p, "map_sg", |t, dev| match t.map_sg {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => unsafe { f(dev, c.as_mut_ptr(), nents, dir.0, attrs.0) },
            // DmaApi's default.
            None => -errno::EOPNOTSUPP,
        });
        write_back(segs, &c);
        ret
    }

    fn unmap_sg(&mut self, p: &mut dyn Platform, segs: &mut [SgEntry], dir: Dir, attrs: Attrs) {
        let Ok(nents) = u32::try_from(segs.len()) else {
            return;
        };
        let mut c = c_segs(segs);
        self.call(p, "unmap_sg", |t, dev| {
            if let Some(f) = t.unmap_sg {
                // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
                unsafe { f(dev, c.as_mut_ptr(), nents, dir.0, attrs.0) }
            }
        });
        write_back(segs, &c);
    }

    fn need_unmap(&mut self, p: &mut dyn Platform) -> bool {
        self.call(p, "need_unmap", |t, dev| match t.need_unmap {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => (unsafe { f(dev) }) != 0,
            // DmaApi's default.
            None => true,
        })
    }

    fn need_sync(&mut self, p: &mut dyn Platform, addr: u64) -> bool {
        self.call(p, "need_sync", |t, dev| match t.need_sync {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => (unsafe { f(dev, addr) }) != 0,
            // DmaApi's default.
            None => true,
        })
    }

    fn map_page_attrs(
        &mut self,
        p: &mut dyn Platform,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        let member = self.table().map_page_attrs;
        match member {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => self.call(p, "map_page_attrs", |_, dev| unsafe {
                f(dev, phys, size, dir.0, attrs.0)
            }),
            // DmaApi's default (STREAM-14): MMIO is refused before anything happens.
            None if attrs.contains(Attrs::MMIO) => DMA_MAPPING_ERROR,
            None => self.map_phys(p, phys, size, dir, attrs),
        }
    }

    fn unmap_page_attrs(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        let member = self.table().unmap_page_attrs;
        match member {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => self.call(p, "unmap_page_attrs", |_, dev| unsafe {
                f(dev, addr, size, dir.0, attrs.0)
            }),
            // DmaApi's default (STREAM-14).
            None if attrs.contains(Attrs::MMIO) => {}
            None => self.unmap_phys(p, addr, size, dir, attrs),
        }
    }

    fn map_resource(
        &mut self,
        p: &mut dyn Platform,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        let member = self.table().map_resource;
        match member {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => self.call(p, "map_resource", |_, dev| unsafe {
                f(dev, phys, size, dir.0, attrs.0)
            }),
            // DmaApi's default (STREAM-14).
            None => self.map_phys(p, phys, size, dir, attrs | Attrs::MMIO),
        }
    }

    fn unmap_resource(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        let member = self.table().unmap_resource;
        match member {
            // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
            Some(f) => self.call(p, "unmap_resource", |_, dev| unsafe {
                f(dev, addr, size, dir.0, attrs.0)
            }),
            // DmaApi's default (STREAM-14).
            None => self.unmap_phys(p, addr, size, dir, attrs | Attrs::MMIO),
        }
    }

    fn advance_time(&mut self, p: &mut dyn Platform, now_ns: u64) {
        self.call(p, "advance_time", |t, dev| {
            if let Some(f) = t.advance_time {
                // SAFETY: a member of the plug-in's table, its live device, our locals (`call`).
                unsafe { f(dev, now_ns) }
            }
        })
    }

    fn use_iova(&self, state: &IovaState) -> bool {
        match (self.table().use_iova, self.dev.is_null()) {
            (Some(f), false) => {
                let _calls = self.plugin.calls.lock().unwrap_or_else(|e| e.into_inner());
                // SAFETY: as above; no platform is lent (the cell's is NULL), so a callback
                // here is refused as a violation... and reported at the next lent call.
                unsafe { f(self.dev, &c_state(state)) != 0 }
            }
            // DmaApi's default (STATE-02).
            _ => dma_use_iova(state),
        }
    }

    fn iova_size(&self, state: &IovaState) -> u64 {
        match (self.table().iova_size, self.dev.is_null()) {
            (Some(f), false) => {
                let _calls = self.plugin.calls.lock().unwrap_or_else(|e| e.into_inner());
                // SAFETY: as for `use_iova`.
                unsafe { f(self.dev, &c_state(state)) }
            }
            // DmaApi's default (STATE-03).
            _ => dma_iova_size(state),
        }
    }
}
