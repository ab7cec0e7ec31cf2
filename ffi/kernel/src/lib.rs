//! The kernel door: runs dmaconf vectors on the real Linux 7.3.4 kernel under QEMU (TCG) with an
//! emulated Intel VT-d IOMMU and QEMU's `edu` device (REAL-KERNEL.md).
//!
//! `prepare` compiles every runnable vector into the module's bytecode (`program.rs`), makes the
//! cached trixie chroot and builds the module (`scripts/kdoor.sh`), boots QEMU once for all of
//! them, parses the console (`console.rs`) and keeps one `Execution` per vector; `execute` hands
//! it back. What the kernel shows is narrower than what the simulated machine records, and
//! `Observes` says exactly what: the `iommu:map` / `iommu:unmap` / `swiotlb:swiotlb_bounced`
//! tracepoints with the fields they carry.

#![forbid(unsafe_code)]

pub mod console;
pub mod program;
pub mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dmaconf_engine::exec::{
    hex, DataView, EndView, Execution, Reservation, Ret, Run, StateView, StepTrace, Stop,
};
use dmaconf_engine::load::action_name;
use dmaconf_engine::model::Vector;
use dmaconf_engine::preset::Presets;
use dmaconf_engine::{Door, Observes};
use dmaconf_machine::{Event, FieldValue};
use dmaconf_platform::{Dir, DMA_IOVA_USE_SWIOTLB};
use indicatif::{ProgressBar, ProgressStyle};

use console::{RunOut, Trace};
use program::{Compiled, Plan};

/// How many times a crashed or hung boot is restarted after the vector that stopped it.
const MAX_BOOTS: usize = 4;

/// What the kernel shows of the platform's events (the tracepoints' own fields).
pub fn observes() -> Observes {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Observes {
        event_kinds: s(&["iommu.map", "iommu.unmap", "swiotlb.alloc"]),
        event_fields: vec![
            // `map`: iova, paddr and the bytes mapped (prot is not traced). A failed map shows
            // the bytes it mapped before failing, not the length asked for; its `ret` is the
            // link's return value (the map is recognised by its rollback `unmap`).
            ("iommu.map".into(), s(&["iova", "phys", "len", "ret"])),
            ("iommu.unmap".into(), s(&["iova", "len", "unmapped"])),
            // `swiotlb_bounced`: the original address and length, before the slot search.
            ("swiotlb.alloc".into(), s(&["orig", "len"])),
        ],
        unseen_when_failed: vec![("iommu.map".into(), s(&["len"]))],
        // What the checker module can see from kretprobes on the exported calls
        // (ffi/kernel/checker/README.md): no device or CPU accesses, no inlines, no bounce
        // slots, no streaming records, and no end of a vector (CHECK-21/22 come at unload).
        checker_codes: Some(s(&[
            "CHECK-01", "CHECK-03", "CHECK-04", "CHECK-05", "CHECK-06", "CHECK-07", "CHECK-08",
            "CHECK-09", "CHECK-11", "CHECK-12", "CHECK-13", "CHECK-14", "CHECK-15", "CHECK-19",
            "CHECK-20",
        ])),
    }
}

/// Wall time of the phases of the last `prepare`.
#[derive(Clone, Debug, Default)]
pub struct Timing {
    pub setup: Duration,
    pub build: Duration,
    pub boots: Vec<(usize, Duration)>,
    pub total: Duration,
}

/// The door. Paths are resolved from the repository root (`../shared/kernel-7.3.4` beside it).
pub struct KernelDoor {
    root: PathBuf,
    cache: PathBuf,
    pkgs: PathBuf,
    results: Mutex<BTreeMap<String, Execution>>,
    /// Kernel WARNs and other console notes per vector id, for the agreement table.
    notes: Mutex<BTreeMap<String, Vec<String>>>,
    timing: Mutex<Timing>,
}

impl KernelDoor {
    pub fn new(root: &Path) -> KernelDoor {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let cache = std::env::var_os("DMACONF_KERNEL_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/kernel-door"));
        let pkgs = std::env::var_os("DMACONF_KERNEL_PKGS")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("../shared/kernel-7.3.4"));
        KernelDoor {
            root,
            cache,
            pkgs,
            results: Mutex::new(BTreeMap::new()),
            notes: Mutex::new(BTreeMap::new()),
            timing: Mutex::new(Timing::default()),
        }
    }

    pub fn notes(&self, id: &str) -> Vec<String> {
        self.notes
            .lock()
            .map(|n| n.get(id).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn timing(&self) -> Timing {
        self.timing.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn script(&self) -> PathBuf {
        self.root.join("ffi/kernel/scripts/kdoor.sh")
    }

    /// Runs one kdoor.sh phase, its log kept in the cache; Err carries the log's tail.
    fn phase(&self, args: &[&Path], log: &str) -> Result<(), String> {
        std::fs::create_dir_all(&self.cache)
            .map_err(|e| format!("{}: {e}", self.cache.display()))?;
        let log = self.cache.join(log);
        let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let status = Command::new("bash")
            .arg(self.script())
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.script().display()))?;
        if status.success() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "{} failed ({status}); log {}:\n{}",
            args.first()
                .map(|a| a.display().to_string())
                .unwrap_or_default(),
            log.display(),
            tail.join("\n")
        ))
    }

    /// One QEMU boot running `runs` (numbered from `first`); returns the console and whether
    /// `timeout` stopped QEMU.
    fn boot(
        &self,
        first: usize,
        runs: &[&Compiled],
        bar: &ProgressBar,
    ) -> Result<(String, String, bool), String> {
        let mut prog = Vec::new();
        for (i, c) in runs.iter().enumerate() {
            prog.extend(program::program(first + i, c));
        }
        let prog_path = self.cache.join("prog.txt");
        let out = self.cache.join("console.log");
        std::fs::write(&prog_path, prog.join("\n") + "\n")
            .map_err(|e| format!("{}: {e}", prog_path.display()))?;
        let transfers: u64 = runs.iter().map(|c| c.transfers).sum();
        let sleeps: u64 = runs.iter().map(|c| c.sleep_ms).sum();
        let secs = 120 + 5 * runs.len() as u64 + transfers / 3 + sleeps.div_ceil(1000);
        let mut child = Command::new("bash")
            .arg(self.script())
            .arg("boot")
            .args([&self.cache, &prog_path, &out])
            .arg(secs.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start QEMU: {e}"))?;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for QEMU: {e}")),
            }
            std::thread::sleep(Duration::from_millis(250));
            if let Ok(text) = std::fs::read_to_string(&out) {
                let begun = text.matches("DMACONF begin ").count();
                bar.set_position((first + begun) as u64);
            }
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let qemu = std::fs::read_to_string(out.with_extension("log.qemu")).unwrap_or_default();
        let timed_out = matches!(status.code(), Some(124) | Some(137));
        if !status.success() && !timed_out && text.is_empty() {
            let tail: Vec<&str> = qemu.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "the boot failed ({status}): {}\n{}",
                err.trim(),
                tail.join("\n")
            ));
        }
        Ok((text, qemu, timed_out))
    }

    fn run_all(
        &self,
        plans: &[(&Vector, Vec<Plan>)],
    ) -> Result<BTreeMap<usize, Result<RunOut, Stop>>, String> {
        let runs: Vec<&Compiled> = plans
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter_map(|p| match p {
                Plan::Run(c) => Some(c.as_ref()),
                _ => None,
            })
            .collect();
        let mut out = BTreeMap::new();
        if runs.is_empty() {
            return Ok(out);
        }
        let t0 = Instant::now();
        let spinner = ProgressBar::new_spinner();
        spinner.enable_steady_tick(Duration::from_millis(120));
        spinner.set_message(
            "kernel door: trixie chroot, 7.3.4 headers, QEMU (cached after the first run)",
        );
        let r = self.phase(&[Path::new("setup"), &self.cache, &self.pkgs], "setup.log");
        let setup = t0.elapsed();
        if let Err(e) = r {
            spinner.finish_and_clear();
            return Err(format!("kernel door setup: {e}"));
        }
        spinner.set_message("kernel door: building the module (gcc-14, -Wall -Wextra -Werror)");
        let t1 = Instant::now();
        let r = self.phase(
            &[
                Path::new("build"),
                &self.cache,
                &self.root.join("ffi/kernel/module"),
            ],
            "build.log",
        );
        let r = r.and_then(|()| {
            self.phase(
                &[
                    Path::new("build-checker"),
                    &self.cache,
                    &self.root.join("ffi/kernel/checker"),
                ],
                "build-checker.log",
            )
        });
        let build = t1.elapsed();
        spinner.finish_and_clear();
        r.map_err(|e| format!("kernel door module build: {e}"))?;

        let bar = ProgressBar::new(runs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "kernel door: QEMU TCG {bar:30} {pos}/{len} runs {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut boots = Vec::new();
        let mut start = 0;
        while start < runs.len() {
            if boots.len() == MAX_BOOTS {
                for g in start..runs.len() {
                    out.insert(
                        g,
                        Err(Stop::Harness(format!(
                            "not run: the kernel stopped {MAX_BOOTS} boots before reaching it"
                        ))),
                    );
                }
                break;
            }
            let tb = Instant::now();
            let (text, qemu, timed_out) = match self.boot(start, &runs[start..], &bar) {
                Ok(x) => x,
                Err(e) => {
                    bar.finish_and_clear();
                    return Err(e);
                }
            };
            boots.push((runs.len() - start, tb.elapsed()));
            let _ = std::fs::write(
                self.cache.join(format!("console-{}.log", boots.len())),
                &text,
            );
            let _ = std::fs::write(
                self.cache.join(format!("console-{}.log.qemu", boots.len())),
                &qemu,
            );
            let mut c = console::parse(&text);
            console::attach_qemu_faults(&mut c, &qemu);
            if !c.started || !c.insmod_ok {
                bar.finish_and_clear();
                let why = if !c.started {
                    "the guest never reached /init"
                } else {
                    "insmod of the module failed"
                };
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(format!(
                    "boot failure: {why}; console tail:\n{}",
                    tail.join("\n")
                ));
            }
            let mut stopped_at = None;
            for (i, g) in (start..runs.len()).enumerate() {
                let _ = i;
                match c.runs.get(&g) {
                    Some(r) if r.end_maps.is_some() => {
                        out.insert(g, Ok(r.clone()));
                    }
                    _ => {
                        stopped_at = Some(g);
                        break;
                    }
                }
            }
            match stopped_at {
                None => break,
                Some(g) => {
                    let stop =
                        if timed_out {
                            Stop::Timeout(format!(
                            "QEMU was stopped by its time limit while this vector ran; console {}",
                            self.cache.join(format!("console-{}.log", boots.len())).display()
                        ))
                        } else {
                            let why = if c.oops.is_empty() {
                                "the console ended while this vector ran".to_string()
                            } else {
                                c.oops.join(" | ")
                            };
                            Stop::Crash(format!("kernel: {why}"))
                        };
                    out.insert(g, Err(stop));
                    start = g + 1;
                }
            }
        }
        bar.finish_and_clear();
        let total = t0.elapsed();
        let boot_text: Vec<String> = boots
            .iter()
            .map(|(n, d)| format!("{n} runs in {:.1} s", d.as_secs_f64()))
            .collect();
        eprintln!(
            "kernel door: setup {:.1} s, module {:.1} s, boot {}; total {:.1} s",
            setup.as_secs_f64(),
            build.as_secs_f64(),
            boot_text.join(", "),
            total.as_secs_f64()
        );
        if let Ok(mut t) = self.timing.lock() {
            *t = Timing {
                setup,
                build,
                boots,
                total,
            };
        }
        Ok(out)
    }
}

fn trace_event(t: &Trace) -> Event {
    match *t {
        Trace::Map { iova, phys, size } => Event::IommuMap {
            iova,
            phys,
            len: size,
            prot: 0,
            ret: 0,
        },
        Trace::Unmap {
            iova,
            size,
            unmapped,
        } => Event::IommuUnmap {
            iova,
            len: size,
            unmapped,
        },
        Trace::Bounced { addr, size } => Event::SwiotlbAlloc {
            orig: addr,
            len: size,
            align_mask: 0,
            min_align_mask: 0,
            slot: 0,
            ret: 0,
        },
    }
}

fn event_json(e: &Event) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("event".into(), e.name().into());
    for (k, v) in e.fields() {
        let v = match v {
            FieldValue::U64(x) => serde_json::Value::String(hex(x)),
            FieldValue::I64(x) => serde_json::Value::from(x),
            FieldValue::Str(s) => serde_json::Value::String(s),
        };
        m.insert(k.into(), v);
    }
    serde_json::Value::Object(m)
}

fn state_view(addr: u64, word: u64) -> StateView {
    StateView {
        addr: hex(addr),
        size: hex(word & !DMA_IOVA_USE_SWIOTLB),
        use_swiotlb: word & DMA_IOVA_USE_SWIOTLB != 0,
    }
}

fn num(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// Builds the `Run` of one compiled vector from what the console said.
fn make_run(vector: &Vector, c: &Compiled, out: &RunOut) -> Run {
    let mut run = Run {
        preset: c.preset.clone(),
        observes: Some(observes()),
        buffers: BTreeMap::new(),
        steps: Vec::new(),
        end: EndView::default(),
        stop: Stop::Completed,
        facts: Some(c.config.facts),
        reserved: c.config.reserved.iter().map(|r| (r.start, r.end)).collect(),
        buffer_places: BTreeMap::new(),
        mapping_count: out.end_maps.unwrap_or(0),
        bounce_count: 0,
        // The guest's pool moves between boots; the door does not read its base yet.
        pool: None,
    };
    run.end.checked = out.checked;
    if !out.errors.is_empty() {
        run.stop = Stop::Harness(format!(
            "the module refused the set-up: {}",
            out.errors.join("; ")
        ));
        return run;
    }
    for (i, name) in c.buffer_names.iter().enumerate() {
        let size = vector.buffers.get(name).map(|b| b.size).unwrap_or(0);
        match out.buffers.get(&i) {
            Some(Ok(p)) => {
                run.buffers.insert(name.clone(), hex(*p));
                run.buffer_places.insert(name.clone(), (*p, size));
            }
            Some(Err(e)) => {
                run.stop =
                    Stop::NotSupported(format!("buffer `{name}` could not be allocated: {e}"));
                return run;
            }
            None => {
                run.stop = Stop::Harness(format!("buffer `{name}` was never placed"));
                return run;
            }
        }
    }
    let granule = c.config.facts.granule().max(1);
    let mut reservations: Vec<Reservation> = Vec::new();
    let mut skipped_write: Option<usize> = None;
    for (k, at) in vector.steps.iter().enumerate() {
        let step = &at.value;
        let Some(so) = out.steps.get(&k) else {
            run.stop = Stop::Harness(format!("step {k}: no result on the console"));
            break;
        };
        let action = action_name(step).unwrap_or("?").to_string();
        let av: Vec<u64> = so
            .result
            .get("av")
            .map(|s| s.split(',').filter_map(num).collect())
            .unwrap_or_default();
        let mut t = StepTrace::new(k, &action, 0);
        t.raw_events = so.events.iter().map(trace_event).collect();
        t.detected = so.detected.clone();
        t.detected.sort();
        t.detected.dedup();
        t.states_after = c
            .state_names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), so.states.get(i).copied().unwrap_or((0, 0))))
            .collect();
        if let Some(rc) = so.result.get("ret").and_then(|r| r.parse::<i32>().ok()) {
            if action == "dma_iova_link" && rc < 0 {
                mark_failed_maps(&mut t.raw_events, rc);
            }
        }
        t.events = t.raw_events.iter().map(event_json).collect();
        let arg_names: &[&str] = match action.as_str() {
            "dma_iova_try_alloc" => &["phys", "size"],
            "dma_iova_link" => &["phys", "offset", "size"],
            "dma_iova_sync" | "dma_iova_unlink" => &["offset", "size"],
            "dma_iova_destroy" => &["mapped_len"],
            "state.set" => &["addr", "size"],
            "device.read" | "device.write" | "cpu.read" | "cpu.write" => &["addr", "len"],
            "dma_map_phys" => &["phys", "size"],
            "dma_unmap_phys" | "dma_sync_single_for_cpu" | "dma_sync_single_for_device" => {
                &["addr", "size"]
            }
            "time.advance" => &["ms"],
            _ => &[],
        };
        for (n, v) in arg_names.iter().zip(&av) {
            t.args.insert(n.to_string(), hex(*v));
        }
        // The streaming calls' handle, direction and attributes, as the engine records them.
        if let Some((handle, d, a)) = stream_args(step) {
            if let Some(h) = handle {
                t.args.insert("handle".into(), h);
            }
            t.args.insert("dir".into(), Dir(d).name().to_string());
            if a != 0 {
                t.args.insert("attrs".into(), hex(a));
            }
        }
        if let Some(s) = so.result.get("slept_us") {
            t.args.insert("slept_us".into(), s.clone());
        }
        // The state a call names, its direction and attributes, as the engine records them.
        let (state, dir_attrs) = state_of(step);
        if let Some(s) = &state {
            t.args.insert("state".into(), s.clone());
            if let Some((d, a)) = dir_attrs {
                t.args.insert("dir".into(), Dir(d).name().to_string());
                if a != 0 {
                    t.args.insert("attrs".into(), hex(a));
                }
            }
            let (addr, word) = t.states_after.get(s).copied().unwrap_or((0, 0));
            if !matches!(
                action.as_str(),
                "device.read" | "device.write" | "cpu.read" | "cpu.write"
            ) {
                t.state = Some(state_view(addr, word));
            }
        }
        if let Some(e) = so.result.get("err") {
            t.error = Some(format!("the module reported {e}"));
        }
        if let Some(r) = so.result.get("ret") {
            t.ret = match action.as_str() {
                "dma_iova_try_alloc" | "dma_use_iova" | "dma_need_unmap" => {
                    Some(Ret::Bool(r == "1"))
                }
                "dma_iova_size" | "dma_map_phys" => Some(Ret::Value(hex(num(r).unwrap_or(0)))),
                _ => r.parse::<i32>().ok().map(Ret::Errno),
            };
        }
        if so.result.get("unobserved").is_some_and(|u| u == "hazards") {
            t.unobserved = Some(
                "hazards are the model's bookkeeping; the real machine shows none (the door does \
                 not make this access: edu's 100 ms would move the platform's time)"
                    .into(),
            );
            if action == "device.write" {
                skipped_write = Some(k);
            }
        } else if let Some(u) = so.result.get("unobserved") {
            t.unobserved = Some(format!("the kernel door cannot observe this access: {u}"));
            if action == "device.write" {
                skipped_write = Some(k);
            }
        } else if let (Some(w), true) = (
            skipped_write,
            matches!(action.as_str(), "device.read" | "cpu.read"),
        ) {
            t.unobserved = Some(format!(
                "the device write of step {w} could not be made, so this read cannot show its effect"
            ));
        } else if c.hazard_steps.contains(&k) {
            t.unobserved =
                Some("hazards are the model's bookkeeping; the real machine shows none".into());
        }
        if matches!(action.as_str(), "device.read" | "device.write") && t.unobserved.is_none() {
            // QEMU's log is the device side; the guest's DMAR reports can miss faults.
            if let Some(&(_, addr)) = so.qemu_faults.first().or(so.faults.first()) {
                let page = addr & !(granule - 1);
                let unmapped = so.holes.as_ref().is_some_and(|h| h.contains(&page));
                t.fault = Some(serde_json::json!({
                    "iova": hex(addr),
                    "reason": if unmapped { "unmapped" } else { "permission" },
                }));
            }
        }
        if matches!(action.as_str(), "device.read" | "cpu.read")
            && t.fault.is_none()
            && t.unobserved.is_none()
        {
            let bytes: Vec<u8> = so.data.values().flatten().copied().collect();
            t.data = Some(DataView::of(bytes));
        }
        // Reservations, judged as the engine judges them (TRYALLOC-06, leaks).
        if action == "dma_iova_try_alloc" && t.ret == Some(Ret::Bool(true)) {
            let s = state.clone().unwrap_or_default();
            let (addr, word) = t.states_after.get(&s).copied().unwrap_or((0, 0));
            let off = av.first().copied().unwrap_or(0) & (granule - 1);
            let size = word & !DMA_IOVA_USE_SWIOTLB;
            let base = addr.wrapping_sub(off);
            let len = size.saturating_add(off).saturating_add(granule - 1) & !(granule - 1);
            reservations.push(Reservation {
                state: s,
                base: hex(base),
                len: hex(len),
                range: (base, len),
                freed: false,
            });
        }
        if matches!(action.as_str(), "dma_iova_destroy" | "dma_iova_free") {
            if let Some(s) = &state {
                if let Some(r) = reservations
                    .iter_mut()
                    .rev()
                    .find(|r| &r.state == s && !r.freed)
                {
                    r.freed = true;
                }
            }
        }
        let stop = t.error.clone();
        run.steps.push(t);
        if let Some(e) = stop {
            run.stop = Stop::Harness(format!("step {k} ({action}): {e}"));
            break;
        }
    }
    run.end.reservations = reservations;
    if let (Some(a), Some(b)) = (out.swiotlb_before, out.swiotlb_after) {
        // io_tlb_used counts 2 KiB slabs, not allocations: any left over is at least one slot.
        run.bounce_count = usize::from(b > a);
        if b > a {
            run.end.bounce_slots = vec![serde_json::json!({"slabs": b - a})];
        }
    }
    run
}

/// A map traced with the bytes it mapped and rolled back by the `unmap` right after it failed:
/// its `ret` is the link's.
fn mark_failed_maps(events: &mut [Event], rc: i32) {
    for i in 0..events.len().saturating_sub(1) {
        if let (
            Event::IommuMap { iova, len, .. },
            Event::IommuUnmap {
                iova: u_iova,
                len: u_len,
                ..
            },
        ) = (&events[i], &events[i + 1])
        {
            if iova == u_iova && len == u_len {
                if let Event::IommuMap { ret, .. } = &mut events[i] {
                    *ret = rc;
                }
            }
        }
    }
}

/// A streaming call's handle (for `dma_map_phys`), dir and attrs.
fn stream_args(step: &dmaconf_engine::model::Step) -> Option<(Option<String>, u32, u64)> {
    if let Some(a) = &step.dma_map_phys {
        Some((
            Some(a.handle.clone()),
            program::dir_num(&a.dir),
            program::attrs_num(&a.attrs),
        ))
    } else if let Some(a) = &step.dma_unmap_phys {
        Some((None, program::dir_num(&a.dir), program::attrs_num(&a.attrs)))
    } else {
        step.dma_sync_single_for_cpu
            .as_ref()
            .or(step.dma_sync_single_for_device.as_ref())
            .map(|a| (None, program::dir_num(&a.dir), 0))
    }
}

/// The state a step names, and its (dir, attrs) when it has them.
fn state_of(step: &dmaconf_engine::model::Step) -> (Option<String>, Option<(u32, u64)>) {
    use dmaconf_engine::model::{DirName, DirSpec};
    let dir = |d: &DirSpec| match d {
        DirSpec::Name(DirName::Bidirectional) => 0,
        DirSpec::Name(DirName::ToDevice) => 1,
        DirSpec::Name(DirName::FromDevice) => 2,
        DirSpec::Name(DirName::None) => 3,
        DirSpec::Raw(v) => *v,
    };
    let attrs = |names: &[String]| {
        names
            .iter()
            .filter_map(|n| dmaconf_platform::Attrs::from_name(n))
            .fold(0u64, |a, b| a | b.0)
    };
    if let Some(a) = &step.dma_iova_try_alloc {
        (Some(a.state.clone()), None)
    } else if let Some(a) = &step.dma_iova_link {
        (Some(a.state.clone()), Some((dir(&a.dir), attrs(&a.attrs))))
    } else if let Some(a) = &step.dma_iova_sync {
        (Some(a.state.clone()), None)
    } else if let Some(a) = &step.dma_iova_unlink {
        (Some(a.state.clone()), Some((dir(&a.dir), attrs(&a.attrs))))
    } else if let Some(a) = &step.dma_iova_destroy {
        (Some(a.state.clone()), Some((dir(&a.dir), attrs(&a.attrs))))
    } else if let Some(a) = step
        .dma_iova_free
        .as_ref()
        .or(step.dma_use_iova.as_ref())
        .or(step.dma_iova_size.as_ref())
    {
        (Some(a.state.clone()), None)
    } else if let Some(a) = &step.state_set {
        (Some(a.state.clone()), None)
    } else {
        (None, None)
    }
}

impl Door for KernelDoor {
    fn name(&self) -> String {
        "kernel:qemu".into()
    }

    fn unmet(&self, vector: &Vector) -> Vec<String> {
        // The real kernel implements the calls with Linux's exact values and has Linux's own
        // bounce pool; it cannot pin memory, make edu non-coherent or show cache lines.
        const MET: &[&str] = &["iova_api", "streaming", "linux_exact"];
        vector
            .requires
            .iter()
            .flatten()
            .filter(|r| !MET.contains(&r.as_str()))
            .cloned()
            .collect()
    }

    fn prepare(&self, vectors: &[&Vector], presets: &Presets) {
        let plans: Vec<(&Vector, Vec<Plan>)> = vectors
            .iter()
            .map(|v| {
                let choices = v.platform.as_ref().map(|p| p.0.clone()).unwrap_or_default();
                (
                    *v,
                    choices
                        .iter()
                        .map(|c| program::compile(v, c, presets))
                        .collect(),
                )
            })
            .collect();
        let outcome = self.run_all(&plans);
        if let Err(e) = &outcome {
            eprintln!("kernel door: {e}");
        }
        let mut results = BTreeMap::new();
        let mut notes = BTreeMap::new();
        let mut g = 0;
        for (v, ps) in &plans {
            let mut runs = Vec::new();
            for (i, p) in ps.iter().enumerate() {
                let preset = v
                    .platform
                    .as_ref()
                    .and_then(|pl| pl.0.get(i))
                    .map(|c| c.preset.clone())
                    .unwrap_or_default();
                let stopped = |stop: Stop| Run {
                    preset: preset.clone(),
                    observes: Some(observes()),
                    buffers: BTreeMap::new(),
                    steps: Vec::new(),
                    end: EndView::default(),
                    stop,
                    facts: None,
                    reserved: Vec::new(),
                    buffer_places: BTreeMap::new(),
                    mapping_count: 0,
                    bounce_count: 0,
                    // The guest's pool moves between boots; the door does not read its base yet.
                    pool: None,
                };
                runs.push(match p {
                    Plan::NotSupported(why) => stopped(Stop::NotSupported(why.clone())),
                    Plan::Harness(why) => stopped(Stop::Harness(why.clone())),
                    Plan::Run(c) => {
                        let r = match &outcome {
                            Err(e) => stopped(Stop::Harness(e.clone())),
                            Ok(out) => match out.get(&g) {
                                Some(Ok(o)) => {
                                    let n: &mut Vec<String> =
                                        notes.entry(v.id.clone()).or_default();
                                    n.extend(o.warnings.iter().cloned());
                                    if let Some(r) = &o.reset {
                                        if r.contains("refused") {
                                            n.push(format!("group type: {}", r.trim()));
                                        }
                                    }
                                    make_run(v, c, o)
                                }
                                Some(Err(stop)) => stopped(stop.clone()),
                                None => stopped(Stop::Harness("no result from the boot".into())),
                            },
                        };
                        g += 1;
                        r
                    }
                });
            }
            results.insert(v.id.clone(), Execution { runs });
        }
        if let Ok(mut r) = self.results.lock() {
            *r = results;
        }
        if let Ok(mut n) = self.notes.lock() {
            *n = notes;
        }
    }

    fn execute(&self, vector: &Vector, _presets: &Presets) -> Execution {
        let found = self
            .results
            .lock()
            .ok()
            .and_then(|r| r.get(&vector.id).cloned());
        found.unwrap_or_else(|| Execution {
            runs: vec![Run {
                preset: String::new(),
                observes: Some(observes()),
                buffers: BTreeMap::new(),
                steps: Vec::new(),
                end: EndView::default(),
                stop: Stop::Harness("the kernel door ran no boot for this vector".into()),
                facts: None,
                reserved: Vec::new(),
                buffer_places: BTreeMap::new(),
                mapping_count: 0,
                bounce_count: 0,
                // The guest's pool moves between boots; the door does not read its base yet.
                pool: None,
            }],
        })
    }
}
