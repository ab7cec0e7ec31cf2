//! `dmaconf._dmaconf`: the in-process Python door. The engine drives a Python object as its
//! `DmaApi`; every platform call the object makes goes through a `Platform` object backed by the
//! simulated machine of the vector being run (spec/1-platform.md, spec/INTERPRETING.md).
//!
//! Faults follow spec/2-outcomes.md: an exception escaping a call is `crash` with the Python
//! traceback, `NotImplementedError` is `not_supported`, a result of the wrong type is
//! `harness_error` naming the call and the type (the wire's counterpart is spec/9-wire.md).

use std::cell::Cell;
use std::path::PathBuf;

use dmaconf_engine::report::{run_suite, Baseline, Filter};
use dmaconf_engine::{load_suite, DoorFault, FaultKind, Implementation, Profile};
use dmaconf_platform::{Attrs, Dir, DmaApi, IovaState, Platform, Prot, SgEntry, WarnCode};
use pyo3::exceptions::{PyNotImplementedError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyTuple};

/// The machine of the call being served, lent to Python for that call only.
type Lent = *mut (dyn Platform + 'static);

/// `dmaconf.Platform` for one device: valid only while the engine is inside one of the
/// implementation's calls; afterwards every method raises (a stored platform cannot outlive the
/// machine it speaks for).
#[pyclass(unsendable, module = "dmaconf._dmaconf", name = "Platform")]
struct PyPlatform {
    lent: Cell<Option<Lent>>,
    facts: Py<PyAny>,
    regions: Py<PyList>,
}

impl PyPlatform {
    fn with<T>(&self, f: impl FnOnce(&mut dyn Platform) -> T) -> PyResult<T> {
        let p = self.lent.get().ok_or_else(|| {
            PyRuntimeError::new_err(
                "this Platform is used outside the call it was handed to (keep no reference to it)",
            )
        })?;
        // SAFETY: `lent` is set by `Lend::new` from the `&mut dyn Platform` the engine passed
        // to the DmaApi call running now, and cleared when that call returns (`Lend::drop`),
        // so the pointer is live and nothing else uses the machine while Python holds the GIL
        // inside this method. The object is `unsendable`, so no other thread can reach it.
        Ok(f(unsafe { &mut *p }))
    }
}

#[pymethods]
impl PyPlatform {
    #[getter]
    fn facts(&self, py: Python<'_>) -> Py<PyAny> {
        self.facts.clone_ref(py)
    }
    fn reserved_regions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.regions.bind(py).iter())
    }
    fn current_cpu(&self) -> PyResult<u32> {
        self.with(|p| p.current_cpu())
    }
    fn now_ns(&self) -> PyResult<u64> {
        self.with(|p| p.now_ns())
    }
    fn iommu_map(&self, iova: u64, phys: u64, len: u64, prot: u32) -> PyResult<i32> {
        self.with(|p| p.iommu_map(iova, phys, len, Prot(prot)))
    }
    fn iotlb_sync_map(&self, iova: u64, len: u64) -> PyResult<i32> {
        self.with(|p| p.iotlb_sync_map(iova, len))
    }
    fn iommu_unmap(&self, iova: u64, len: u64) -> PyResult<u64> {
        self.with(|p| p.iommu_unmap(iova, len))
    }
    fn iotlb_sync(&self, iova: u64, len: u64) -> PyResult<()> {
        self.with(|p| p.iotlb_sync(iova, len))
    }
    fn flush_iotlb_all(&self) -> PyResult<()> {
        self.with(|p| p.flush_iotlb_all())
    }
    fn iova_to_phys(&self, iova: u64) -> PyResult<u64> {
        self.with(|p| p.iova_to_phys(iova))
    }
    fn sync_for_device(&self, phys: u64, len: u64, dir: u32) -> PyResult<()> {
        self.with(|p| p.sync_for_device(phys, len, Dir(dir)))
    }
    fn sync_for_cpu(&self, phys: u64, len: u64, dir: u32) -> PyResult<()> {
        self.with(|p| p.sync_for_cpu(phys, len, Dir(dir)))
    }
    fn sync_barrier(&self) -> PyResult<()> {
        self.with(|p| p.sync_barrier())
    }
    /// `(0, slot)` or `(-errno, 0)`.
    fn bounce_alloc(
        &self,
        orig: u64,
        len: u64,
        alloc_align_mask: u64,
        min_align_mask: u64,
    ) -> PyResult<(i32, u64)> {
        self.with(|p| {
            let mut slot = 0;
            let ret = p.bounce_alloc(orig, len, alloc_align_mask, min_align_mask, &mut slot);
            (ret, if ret == 0 { slot } else { 0 })
        })
    }
    fn bounce_free(&self, slot: u64, len: u64) -> PyResult<()> {
        self.with(|p| p.bounce_free(slot, len))
    }
    fn is_bounce(&self, phys: u64) -> PyResult<bool> {
        self.with(|p| p.is_bounce(phys))
    }
    fn bounce_orig(&self, phys: u64) -> PyResult<u64> {
        self.with(|p| p.bounce_orig(phys))
    }
    fn copy(&self, dst: u64, src: u64, len: u64) -> PyResult<()> {
        self.with(|p| p.copy(dst, src, len))
    }
    fn fill(&self, dst: u64, byte: u8, len: u64) -> PyResult<()> {
        self.with(|p| p.fill(dst, byte, len))
    }
    fn p2p_type(&self, phys: u64) -> PyResult<u32> {
        self.with(|p| p.p2p_type(phys))
    }
    fn p2p_bus_offset(&self, phys: u64) -> PyResult<u64> {
        self.with(|p| p.p2p_bus_offset(phys))
    }
    /// `code`: a WARN code name of spec/2-outcomes.md (or its number).
    fn warn(&self, code: &Bound<'_, PyAny>) -> PyResult<()> {
        let number = match code.extract::<String>() {
            Ok(name) => WarnCode::from_name(&name).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "warn({name:?}): not a WARN code of spec/2-outcomes.md"
                ))
            })?,
            Err(_) => WarnCode(code.extract::<u32>()?),
        };
        self.with(|p| p.warn(number))
    }
}

/// Lends the engine's platform to the Python object for one call; the loan ends on drop, also
/// when the call unwinds.
struct Lend<'a> {
    platform: &'a Bound<'a, PyPlatform>,
}

impl<'a> Lend<'a> {
    fn new(platform: &'a Bound<'a, PyPlatform>, p: &mut dyn Platform) -> Lend<'a> {
        let short: *mut (dyn Platform + '_) = p;
        // SAFETY: only the lifetime bound of the trait object changes (same fat pointer). The
        // 'static pointer never outlives `p`: `Lend` clears it on drop, before `p`'s borrow
        // ends, and `PyPlatform::with` refuses to use a cleared one.
        let long: Lent = unsafe { std::mem::transmute::<*mut (dyn Platform + '_), Lent>(short) };
        platform.borrow().lent.set(Some(long));
        Lend { platform }
    }
}

impl Drop for Lend<'_> {
    fn drop(&mut self) {
        self.platform.borrow().lent.set(None);
    }
}

/// One Python implementation instance serving one device.
struct PyDmaApi {
    /// The instance, or why the class could not make one (every call then crashes with it).
    obj: Result<Py<PyAny>, String>,
    platform: Option<Py<PyPlatform>>,
    api: Py<PyModule>,
}

/// Raises the fault for a Python error: `NotImplementedError` is `not_supported`, any other
/// exception `crash` with its traceback.
fn raise(py: Python<'_>, call: &str, err: PyErr) -> ! {
    if err.is_instance_of::<PyNotImplementedError>(py) {
        let why = err.value(py).to_string();
        let detail = if why.is_empty() {
            format!("{call}: NotImplementedError")
        } else {
            format!("{call}: NotImplementedError: {why}")
        };
        DoorFault::new(FaultKind::NotSupported, detail).raise()
    }
    DoorFault::new(
        FaultKind::Crash,
        format!("{call} raised:\n{}", traceback(py, &err)),
    )
    .raise()
}

fn traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?
        .extract::<Vec<String>>()
    });
    match formatted {
        Ok(lines) => lines.concat(),
        Err(_) => err.to_string(),
    }
}

/// A result of the wrong type: `harness_error` naming the call and the type.
fn wrong_type(call: &str, value: &Bound<'_, PyAny>, want: &str) -> ! {
    let ty = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    let shown = value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into());
    DoorFault::new(
        FaultKind::Harness,
        format!("{call} returned {ty} ({shown}), expected {want}"),
    )
    .raise()
}

fn int<'py, T: for<'a> FromPyObject<'a, 'py>>(call: &str, v: &Bound<'py, PyAny>, want: &str) -> T {
    if v.is_instance_of::<PyBool>() {
        wrong_type(call, v, want)
    }
    v.extract::<T>()
        .unwrap_or_else(|_| wrong_type(call, v, want))
}

fn boolean(call: &str, v: &Bound<'_, PyAny>) -> bool {
    if !v.is_instance_of::<PyBool>() {
        wrong_type(call, v, "a bool")
    }
    v.is_truthy().unwrap_or(false)
}

fn none(call: &str, v: &Bound<'_, PyAny>) {
    if !v.is_none() {
        wrong_type(call, v, "None")
    }
}

impl PyDmaApi {
    fn instance<'py>(&self, py: Python<'py>, call: &str) -> Bound<'py, PyAny> {
        match &self.obj {
            Ok(o) => o.bind(py).clone(),
            Err(e) => DoorFault::new(FaultKind::Crash, format!("{call}: {e}")).raise(),
        }
    }

    /// The device's Platform object, made at the first call from the platform's facts.
    fn platform<'py>(&mut self, py: Python<'py>, p: &dyn Platform) -> Bound<'py, PyPlatform> {
        if let Some(pl) = &self.platform {
            return pl.bind(py).clone();
        }
        let made = (|| -> PyResult<Py<PyPlatform>> {
            let api = self.api.bind(py);
            let f = p.facts();
            let kw = PyDict::new(py);
            kw.set_item("arch", f.arch as u32)?;
            kw.set_item("domain", f.domain as u32)?;
            kw.set_item("backend", f.backend as u32)?;
            kw.set_item("pgsize_bitmap", f.pgsize_bitmap)?;
            kw.set_item("aperture_start", f.aperture_start)?;
            kw.set_item("aperture_end", f.aperture_end)?;
            kw.set_item("force_aperture", f.force_aperture)?;
            kw.set_item("coherent", f.coherent)?;
            kw.set_item("untrusted", f.untrusted)?;
            kw.set_item("pci", f.pci)?;
            kw.set_item("forcedac", f.forcedac)?;
            kw.set_item("dma_mask", f.dma_mask)?;
            kw.set_item("bus_dma_limit", f.bus_dma_limit)?;
            kw.set_item("min_align_mask", f.min_align_mask)?;
            kw.set_item("cache_line", f.cache_line)?;
            kw.set_item("swiotlb", f.swiotlb)?;
            kw.set_item("kmalloc_bounce", f.kmalloc_bounce)?;
            kw.set_item("iommu_dma_config", f.iommu_dma_config)?;
            kw.set_item("nr_cpus", f.nr_cpus)?;
            kw.set_item("msi_doorbell", f.msi_doorbell)?;
            kw.set_item("max_seg_size", f.max_seg_size)?;
            kw.set_item("seg_boundary_mask", f.seg_boundary_mask)?;
            kw.set_item("swiotlb_force", f.swiotlb_force)?;
            kw.set_item("dma_offset", f.dma_offset)?;
            kw.set_item("write_only_pte", f.write_only_pte)?;
            let facts = api.getattr("Facts")?.call((), Some(&kw))?;
            let regions = PyList::empty(py);
            let region = api.getattr("Region")?;
            let mut i = 0;
            while let Some(r) = p.reserved_region(i) {
                regions.append(region.call1((r.start, r.end, r.kind as u32))?)?;
                i += 1;
            }
            Py::new(
                py,
                PyPlatform {
                    lent: Cell::new(None),
                    facts: facts.unbind(),
                    regions: regions.unbind(),
                },
            )
        })();
        match made {
            Ok(pl) => {
                self.platform = Some(pl.clone_ref(py));
                pl.into_bound(py)
            }
            Err(e) => DoorFault::new(
                FaultKind::Harness,
                format!("cannot build the Platform object: {}", traceback(py, &e)),
            )
            .raise(),
        }
    }

    /// Calls `obj.<call>(platform, *args)` with the machine lent for the call.
    fn call<'py>(
        &mut self,
        py: Python<'py>,
        p: &mut dyn Platform,
        call: &str,
        args: impl FnOnce(Bound<'py, PyPlatform>) -> PyResult<Bound<'py, PyTuple>>,
    ) -> Bound<'py, PyAny> {
        let obj = self.instance(py, call);
        let platform = self.platform(py, p);
        let method = match obj.getattr(call) {
            Ok(m) => m,
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) => {
                DoorFault::new(FaultKind::NotSupported, format!("no method {call}()")).raise()
            }
            Err(e) => raise(py, call, e),
        };
        let args = args(platform.clone()).unwrap_or_else(|e| raise(py, call, e));
        let _loan = Lend::new(&platform, p);
        method.call1(args).unwrap_or_else(|e| raise(py, call, e))
    }

    fn state<'py>(&self, py: Python<'py>, s: &IovaState) -> Bound<'py, PyAny> {
        self.api
            .bind(py)
            .getattr("IovaState")
            .and_then(|c| c.call1((s.addr, s.size)))
            .unwrap_or_else(|e| raise(py, "IovaState", e))
    }

    fn state_back(call: &str, obj: &Bound<'_, PyAny>, s: &mut IovaState) {
        for (field, slot) in [("addr", &mut s.addr), ("size", &mut s.size)] {
            let v = obj
                .getattr(field)
                .unwrap_or_else(|e| raise(obj.py(), call, e));
            *slot = int(
                &format!("{call}: state.{field}"),
                &v,
                "an unsigned 64-bit int",
            );
        }
    }

    fn segs<'py>(&self, py: Python<'py>, segs: &[SgEntry]) -> Bound<'py, PyList> {
        let class = self
            .api
            .bind(py)
            .getattr("SgEntry")
            .unwrap_or_else(|e| raise(py, "SgEntry", e));
        let items: Vec<Bound<'py, PyAny>> = segs
            .iter()
            .map(|e| {
                class
                    .call1((e.phys, e.len, e.dma_address, e.dma_len, e.flags))
                    .unwrap_or_else(|err| raise(py, "SgEntry", err))
            })
            .collect();
        PyList::new(py, items).unwrap_or_else(|e| raise(py, "SgEntry", e))
    }

    fn segs_back(call: &str, list: &Bound<'_, PyList>, segs: &mut [SgEntry]) {
        if list.len() != segs.len() {
            DoorFault::new(
                FaultKind::Harness,
                format!(
                    "{call} changed the scatterlist's length ({} entries, not {})",
                    list.len(),
                    segs.len()
                ),
            )
            .raise()
        }
        for (i, (item, e)) in list.iter().zip(segs.iter_mut()).enumerate() {
            let get = |f: &str| {
                item.getattr(f)
                    .unwrap_or_else(|err| raise(list.py(), call, err))
            };
            let name = |f: &str| format!("{call}: segs[{i}].{f}");
            e.dma_address = int(&name("dma_address"), &get("dma_address"), "an int");
            e.dma_len = int(&name("dma_len"), &get("dma_len"), "an int");
            e.flags = int(&name("flags"), &get("flags"), "an int");
        }
    }
}

impl DmaApi for PyDmaApi {
    fn probe(&mut self, p: &mut dyn Platform) -> i32 {
        Python::attach(|py| {
            let r = self.call(py, p, "probe", |pl| PyTuple::new(py, [pl]));
            int("probe", &r, "an int")
        })
    }

    fn iova_try_alloc(
        &mut self,
        p: &mut dyn Platform,
        state: &mut IovaState,
        phys: u64,
        size: u64,
    ) -> bool {
        Python::attach(|py| {
            let st = self.state(py, state);
            let s2 = st.clone();
            let r = self.call(py, p, "iova_try_alloc", |pl| {
                PyTuple::new(
                    py,
                    [
                        pl.into_any(),
                        s2,
                        phys.into_pyobject(py)?.into_any(),
                        size.into_pyobject(py)?.into_any(),
                    ],
                )
            });
            let ret = boolean("iova_try_alloc", &r);
            Self::state_back("iova_try_alloc", &st, state);
            ret
        })
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
        Python::attach(|py| {
            let st = self.state(py, state);
            let s2 = st.clone();
            let r = self.call(py, p, "iova_link", |pl| {
                (pl, s2, phys, offset, size, dir.0, attrs.0).into_pyobject(py)
            });
            let ret = int("iova_link", &r, "an int");
            Self::state_back("iova_link", &st, state);
            ret
        })
    }

    fn iova_sync(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        offset: u64,
        size: u64,
    ) -> i32 {
        Python::attach(|py| {
            let st = self.state(py, state);
            let r = self.call(py, p, "iova_sync", |pl| {
                (pl, st, offset, size).into_pyobject(py)
            });
            int("iova_sync", &r, "an int")
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
        Python::attach(|py| {
            let st = self.state(py, state);
            let r = self.call(py, p, "iova_unlink", |pl| {
                (pl, st, offset, size, dir.0, attrs.0).into_pyobject(py)
            });
            none("iova_unlink", &r)
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
        Python::attach(|py| {
            let st = self.state(py, state);
            let r = self.call(py, p, "iova_destroy", |pl| {
                (pl, st, mapped_len, dir.0, attrs.0).into_pyobject(py)
            });
            none("iova_destroy", &r)
        })
    }

    fn iova_free(&mut self, p: &mut dyn Platform, state: &IovaState) {
        Python::attach(|py| {
            let st = self.state(py, state);
            let r = self.call(py, p, "iova_free", |pl| (pl, st).into_pyobject(py));
            none("iova_free", &r)
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
        self.map(p, "map_phys", phys, size, dir, attrs)
    }

    fn unmap_phys(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir, attrs: Attrs) {
        self.unmap(p, "unmap_phys", addr, size, dir, attrs)
    }

    fn sync_single_for_cpu(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir) {
        self.sync_single(p, "sync_single_for_cpu", addr, size, dir)
    }

    fn sync_single_for_device(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir) {
        self.sync_single(p, "sync_single_for_device", addr, size, dir)
    }

    fn map_sg(
        &mut self,
        p: &mut dyn Platform,
        segs: &mut [SgEntry],
        dir: Dir,
        attrs: Attrs,
    ) -> i32 {
        Python::attach(|py| {
            let list = self.segs(py, segs);
            let l2 = list.clone();
            let r = self.call(py, p, "map_sg", |pl| {
                (pl, l2, dir.0, attrs.0).into_pyobject(py)
            });
            let ret = int("map_sg", &r, "an int");
            Self::segs_back("map_sg", &list, segs);
            ret
        })
    }

    fn unmap_sg(&mut self, p: &mut dyn Platform, segs: &mut [SgEntry], dir: Dir, attrs: Attrs) {
        Python::attach(|py| {
            let list = self.segs(py, segs);
            let l2 = list.clone();
            let r = self.call(py, p, "unmap_sg", |pl| {
                (pl, l2, dir.0, attrs.0).into_pyobject(py)
            });
            none("unmap_sg", &r);
            Self::segs_back("unmap_sg", &list, segs);
        })
    }

    fn need_unmap(&mut self, p: &mut dyn Platform) -> bool {
        Python::attach(|py| {
            let r = self.call(py, p, "need_unmap", |pl| PyTuple::new(py, [pl]));
            boolean("need_unmap", &r)
        })
    }

    fn need_sync(&mut self, p: &mut dyn Platform, addr: u64) -> bool {
        Python::attach(|py| {
            let r = self.call(py, p, "need_sync", |pl| (pl, addr).into_pyobject(py));
            boolean("need_sync", &r)
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
        if self.has("map_page_attrs") {
            return self.map(p, "map_page_attrs", phys, size, dir, attrs);
        }
        // STREAM-14's definition in terms of map_phys.
        if attrs.contains(Attrs::MMIO) {
            return dmaconf_platform::DMA_MAPPING_ERROR;
        }
        self.map_phys(p, phys, size, dir, attrs)
    }

    fn unmap_page_attrs(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        if self.has("unmap_page_attrs") {
            return self.unmap(p, "unmap_page_attrs", addr, size, dir, attrs);
        }
        if !attrs.contains(Attrs::MMIO) {
            self.unmap_phys(p, addr, size, dir, attrs)
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
        if self.has("map_resource") {
            return self.map(p, "map_resource", phys, size, dir, attrs);
        }
        self.map_phys(p, phys, size, dir, attrs | Attrs::MMIO)
    }

    fn unmap_resource(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        if self.has("unmap_resource") {
            return self.unmap(p, "unmap_resource", addr, size, dir, attrs);
        }
        self.unmap_phys(p, addr, size, dir, attrs | Attrs::MMIO)
    }

    fn advance_time(&mut self, p: &mut dyn Platform, now_ns: u64) {
        if self.has("advance_time") {
            Python::attach(|py| {
                let r = self.call(py, p, "advance_time", |pl| (pl, now_ns).into_pyobject(py));
                none("advance_time", &r)
            })
        }
    }

    fn use_iova(&self, state: &IovaState) -> bool {
        if !self.has("use_iova") {
            return dmaconf_platform::dma_use_iova(state);
        }
        Python::attach(|py| {
            let obj = self.instance(py, "use_iova");
            let st = self.state(py, state);
            let r = obj
                .call_method1("use_iova", (st,))
                .unwrap_or_else(|e| raise(py, "use_iova", e));
            boolean("use_iova", &r)
        })
    }

    fn iova_size(&self, state: &IovaState) -> u64 {
        if !self.has("iova_size") {
            return dmaconf_platform::dma_iova_size(state);
        }
        Python::attach(|py| {
            let obj = self.instance(py, "iova_size");
            let st = self.state(py, state);
            let r = obj
                .call_method1("iova_size", (st,))
                .unwrap_or_else(|e| raise(py, "iova_size", e));
            int("iova_size", &r, "an unsigned 64-bit int")
        })
    }
}

impl PyDmaApi {
    fn has(&self, method: &str) -> bool {
        Python::attach(|py| match &self.obj {
            Ok(o) => o.bind(py).hasattr(method).unwrap_or(false),
            Err(_) => true,
        })
    }

    fn map(
        &mut self,
        p: &mut dyn Platform,
        call: &str,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        Python::attach(|py| {
            let r = self.call(py, p, call, |pl| {
                (pl, phys, size, dir.0, attrs.0).into_pyobject(py)
            });
            int(
                call,
                &r,
                "an unsigned 64-bit int (a DMA address or DMA_MAPPING_ERROR)",
            )
        })
    }

    fn unmap(
        &mut self,
        p: &mut dyn Platform,
        call: &str,
        addr: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        Python::attach(|py| {
            let r = self.call(py, p, call, |pl| {
                (pl, addr, size, dir.0, attrs.0).into_pyobject(py)
            });
            none(call, &r)
        })
    }

    fn sync_single(&mut self, p: &mut dyn Platform, call: &str, addr: u64, size: u64, dir: Dir) {
        Python::attach(|py| {
            let r = self.call(py, p, call, |pl| (pl, addr, size, dir.0).into_pyobject(py));
            none(call, &r)
        })
    }
}

/// The repository this extension was built from: its `vectors/` is the default suite.
#[pyfunction]
fn built_from() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One vector's result under one profile, for `dmaconf.Result`: `(id, profile, class, reason,
/// diff, trace_json, file, line, waived, errors)`; `waived` is "FILE:LINE: reason" of the
/// expectation that waived it, `errors` the expectation errors of the vector (stale entries).
type Row = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    u64,
    Option<String>,
    Vec<String>,
);

/// Runs the suite in `vectors_dir` against `factory` (checked by the caller, `dmaconf.run`),
/// applying the expectations file if one is given exactly as `dmaconf run --expectations` does.
/// Returns one row per vector and profile, and the run's problems outside any vector.
#[pyfunction]
#[pyo3(signature = (factory, name, capabilities, vectors_dir, profiles, ids, trace, expectations=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn run_suite_py(
    py: Python<'_>,
    factory: Py<PyAny>,
    name: String,
    capabilities: Vec<String>,
    vectors_dir: PathBuf,
    profiles: Vec<String>,
    ids: Vec<String>,
    trace: bool,
    expectations: Option<PathBuf>,
) -> PyResult<(Vec<Row>, Vec<String>)> {
    let profiles = profiles
        .iter()
        .map(|p| match p.as_str() {
            "semantic" => Ok(Profile::Semantic),
            "linux" => Ok(Profile::Linux),
            other => Err(PyValueError::new_err(format!(
                "unknown profile `{other}` (semantic, linux)"
            ))),
        })
        .collect::<PyResult<Vec<_>>>()?;
    let api: Py<PyModule> = py.import("dmaconf.api")?.unbind();
    let caps: Vec<&str> = capabilities.iter().map(String::as_str).collect();
    let implementation = Implementation::new(name, &caps, move || {
        Python::attach(|py| {
            let obj =
                factory.bind(py).call0().map(Bound::unbind).map_err(|e| {
                    format!("making the implementation raised:\n{}", traceback(py, &e))
                });
            Box::new(PyDmaApi {
                obj,
                platform: None,
                api: api.clone_ref(py),
            }) as Box<dyn DmaApi>
        })
    });
    let suite = load_suite(&vectors_dir);
    let baseline = match expectations {
        None => None,
        Some(path) => {
            let baseline = Baseline::load(&path).map_err(|errors| {
                let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                PyValueError::new_err(text.join("\n"))
            })?;
            let unknown = baseline.unknown_ids(&suite);
            if !unknown.is_empty() {
                return Err(PyValueError::new_err(unknown.join("\n")));
            }
            Some(baseline)
        }
    };
    let filter = Filter {
        ids,
        ..Filter::default()
    };
    let mut report = run_suite(&suite, &implementation, &profiles, &filter, |_| {})
        .map_err(PyValueError::new_err)?;
    if let Some(b) = &baseline {
        report.vectors.iter_mut().for_each(|v| b.apply(v));
    }
    let mut out = Vec::new();
    for v in &report.vectors {
        let trace_json = match (&v.trace, trace) {
            (Some(t), true) => serde_json::to_string(t).ok(),
            _ => None,
        };
        for (profile, verdict) in &v.results {
            let mut diff = String::new();
            for m in &verdict.mismatches {
                let step = m.step.map(|s| format!("step {s}, ")).unwrap_or_default();
                diff.push_str(&format!(
                    "[{}] {step}{}: expected {}, actual {}\n",
                    m.preset, m.what, m.expected, m.actual
                ));
                if let Some(d) = &m.diff {
                    for line in d.lines() {
                        diff.push_str(&format!("  {line}\n"));
                    }
                }
            }
            out.push((
                v.id.clone(),
                profile.name().to_string(),
                verdict.class.name().to_string(),
                verdict.reason.clone(),
                diff,
                trace_json.clone(),
                v.file.display().to_string(),
                v.line,
                v.waived
                    .get(profile)
                    .map(|w| format!("{}: {}", w.at, w.reason)),
                v.errors.clone(),
            ));
        }
    }
    Ok((out, report.errors))
}

/// The vectors of the suite in `vectors_dir` without running them, for pytest's collection:
/// `(id, file, line)` per vector, and the suite's problems outside any vector.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn list_vectors(vectors_dir: PathBuf) -> (Vec<(String, String, u64)>, Vec<String>) {
    let suite = load_suite(&vectors_dir);
    let vectors = suite
        .vectors
        .iter()
        .map(|l| (l.id.clone(), l.file.display().to_string(), l.line))
        .collect();
    (
        vectors,
        suite.errors.iter().map(|e| e.to_string()).collect(),
    )
}

/// Reads an expectations file with the engine's reader (the CLI's `--expectations`) and checks
/// its ids against the suite in `vectors_dir`. Returns the problems, each naming file:line.
#[pyfunction]
fn check_expectations(path: PathBuf, vectors_dir: PathBuf) -> Vec<String> {
    match Baseline::load(&path) {
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
        Ok(baseline) => baseline.unknown_ids(&load_suite(&vectors_dir)),
    }
}

#[pymodule]
fn _dmaconf(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(list_vectors, m)?)?;
    m.add_function(wrap_pyfunction!(check_expectations, m)?)?;
    m.add_function(wrap_pyfunction!(run_suite_py, m)?)?;
    m.add_function(wrap_pyfunction!(built_from, m)?)?;
    m.add_class::<PyPlatform>()?;
    Ok(())
}
