//! Compiling a vector into the module's bytecode (`module/dmaconf_kdoor.c` documents it), or
//! saying why the emulated machine cannot express it.

use std::collections::BTreeMap;

use dmaconf_engine::model::{
    Atom, DirName, DirSpec, Expr, PatternSpec, PlatformChoice, Step, Vector,
};
use dmaconf_engine::preset::Presets;
use dmaconf_machine::MachineConfig;
use dmaconf_platform::{Arch, Attrs, DomainType, PgtableBackend, RegionKind};

/// The most states and buffers the module keeps per vector.
pub const MAX_STATES: usize = 16;
pub const MAX_BUFFERS: usize = 16;
/// edu moves at most this much per DMA transfer.
pub const EDU_CHUNK: u64 = 4096;
/// The largest buffer the module allocates (alloc_pages of MAX_PAGE_ORDER = 10: 4 MiB).
const MAX_BUFFER: u64 = 4 << 20;
/// The flush queue's timeout (IOVA_DEFAULT_FQ_TIMEOUT, ms) and the guest's jiffy (CONFIG_HZ=250):
/// `mod_timer(jiffies + msecs_to_jiffies(10))` is 3 jiffies, so the timer fires 8 to 12 ms after
/// the first lazy unmap armed it.
const FQ_TIMEOUT_MS: u64 = 10;
const JIFFY_MS: u64 = 4;
/// The earliest the kernel's flush can come, less what the steps between take (well under 1 ms
/// each): a vector whose time since the arming reaches this without reaching the timeout would
/// see a flush the model has not made yet.
const FQ_EARLIEST_SAFE_MS: u64 = 2 * JIFFY_MS - 2;
/// The longest `time.advance` the door sleeps.
const MAX_ADVANCE_MS: u64 = 60_000;

/// The machine QEMU emulates (`-machine q35 -device intel-iommu -device edu`, REAL-KERNEL §0):
/// a preset whose facts differ from these describes another machine.
const PGSIZE: u64 = 0x4020_1000;
const APERTURE_END: u64 = 0xffff_ffff_ffff;
const RESERVED: &[(u64, u64, RegionKind)] = &[
    (0xa0000, 0xbffff, RegionKind::PciWindow),
    (0x8000_0000, 0xafff_ffff, RegionKind::PciWindow),
    (0xc000_0000, 0xfebf_ffff, RegionKind::PciWindow),
    (0x1_c000_0000, 0x9_bfff_ffff, RegionKind::PciWindow),
    (0xfee0_0000, 0xfeef_ffff, RegionKind::Msi),
];

/// One run (a vector on one preset) ready for the boot.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub preset: String,
    /// Group type to write: `DMA`, `DMA-FQ` or `identity`.
    pub domain: &'static str,
    pub untrusted: bool,
    pub dma_mask: u64,
    pub min_align_mask: u64,
    /// Buffer lines (`buf N SIZE OFFSET SEED`), then step lines (`s K OP ...`).
    pub buffers: Vec<String>,
    pub steps: Vec<String>,
    /// Index -> name.
    pub state_names: Vec<String>,
    pub buffer_names: Vec<String>,
    /// Steps whose expectations name hazards: the kernel cannot see hazards.
    pub hazard_steps: Vec<usize>,
    /// edu transfers the run makes (for the boot's time limit).
    pub transfers: u64,
    /// Milliseconds the run sleeps for `time.advance` (for the boot's time limit).
    pub sleep_ms: u64,
    pub config: MachineConfig,
}

/// What becomes of one run.
#[derive(Clone, Debug)]
pub enum Plan {
    Run(Box<Compiled>),
    NotSupported(String),
    Harness(String),
}

/// Checks that the configured platform is the emulated one; returns the group type to use.
fn machine_fits(choice: &PlatformChoice, c: &MachineConfig) -> Result<&'static str, String> {
    let f = &c.facts;
    if f.arch != Arch::X86 || f.backend != PgtableBackend::Iommupt || f.pgsize_bitmap == 0 {
        return Err(format!(
            "preset `{}` describes another machine; QEMU emulates x86 q35 with Intel VT-d",
            choice.preset
        ));
    }
    let mut why = Vec::new();
    if f.arch != Arch::X86 {
        why.push("the emulated machine is x86 (q35)".to_string());
    }
    if f.backend != PgtableBackend::Iommupt {
        why.push("the emulated IOMMU is Intel VT-d (iommupt page table)".into());
    }
    if f.pgsize_bitmap != PGSIZE {
        why.push(format!(
            "VT-d page sizes are {PGSIZE:#x}, not {:#x}",
            f.pgsize_bitmap
        ));
    }
    if f.aperture_start != 0 || f.aperture_end != APERTURE_END {
        why.push("the VT-d aperture is 0..2^48-1".into());
    }
    if !f.coherent {
        why.push("QEMU's devices are coherent (no non-coherent DMA on x86 q35)".into());
    }
    if !f.pci {
        why.push("edu is a PCI device".into());
    }
    if f.forcedac {
        why.push("forcedac is a boot parameter (iommu.forcedac=1) shared by the whole boot".into());
    }
    if f.bus_dma_limit != 0 {
        why.push("QEMU's q35 has no bus DMA limit to set".into());
    }
    if f.nr_cpus != 1 {
        why.push("the boot runs with -smp 1".into());
    }
    if c.needs_sync_map {
        why.push("VT-d in QEMU does not need iotlb_sync_map (no caching mode)".into());
    }
    if !f.swiotlb {
        why.push("the boot has SWIOTLB (RAM above 4 GiB)".into());
    }
    if !f.write_only_pte {
        why.push(
            "QEMU's VT-d runs in legacy mode: a second-stage page table, which has write-only PTEs"
                .into(),
        );
    }
    let reserved: Vec<(u64, u64, RegionKind)> = c
        .reserved
        .iter()
        .map(|r| (r.start, r.end, r.kind))
        .collect();
    if reserved != RESERVED {
        why.push(
            "the reserved IOVA regions differ from the q35 host-bridge windows and MSI window"
                .into(),
        );
    }
    if !why.is_empty() {
        return Err(format!("preset `{}`: {}", choice.preset, why.join("; ")));
    }
    match f.domain {
        DomainType::Dma => Ok("DMA"),
        DomainType::DmaFq => Ok("DMA-FQ"),
        DomainType::Identity => Ok("identity"),
        DomainType::None => Err("a device without an IOMMU domain cannot be emulated here".into()),
    }
}

struct Names {
    states: Vec<String>,
    buffers: Vec<String>,
    fills: BTreeMap<String, u64>,
}

impl Names {
    fn state(&mut self, name: &str) -> Result<usize, Plan> {
        if let Some(i) = self.states.iter().position(|s| s == name) {
            return Ok(i);
        }
        if self.states.len() == MAX_STATES {
            return Err(Plan::NotSupported(format!(
                "more than {MAX_STATES} states in one vector"
            )));
        }
        self.states.push(name.to_string());
        Ok(self.states.len() - 1)
    }

    /// Translates an expression into the module's operand syntax.
    fn expr(&mut self, e: &Expr) -> Result<String, Plan> {
        match &e.0 {
            Atom::Int(v) => Ok(format!("{v:#x}")),
            Atom::Bool(b) => Err(Plan::Harness(format!("`{b}` is not a number"))),
            Atom::Str(s) => {
                let mut out = String::new();
                let mut term = String::new();
                let flush = |term: &mut String, out: &mut String, n: &mut Names| {
                    let t = term.trim().to_string();
                    term.clear();
                    n.term(&t).map(|x| out.push_str(&x))
                };
                for ch in s.chars() {
                    if ch == '+' || ch == '-' {
                        flush(&mut term, &mut out, self)?;
                        out.push(ch);
                    } else {
                        term.push(ch);
                    }
                }
                flush(&mut term, &mut out, self)?;
                Ok(out)
            }
        }
    }

    fn term(&mut self, t: &str) -> Result<String, Plan> {
        if t == "granule" {
            return Ok("g".into());
        }
        if let Some(v) = dmaconf_engine::expr::number(t) {
            return Ok(format!("{v:#x}"));
        }
        let bad = || Plan::Harness(format!("cannot translate the term `{t}`"));
        if let Some(rest) = t.strip_prefix("buf.") {
            let (name, suffix) = match rest.split_once('.') {
                Some((n, "end")) => (n, "e"),
                Some((n, "size")) => (n, "s"),
                Some(_) => return Err(bad()),
                None => (rest, ""),
            };
            let i = self
                .buffers
                .iter()
                .position(|b| b == name)
                .ok_or_else(bad)?;
            return Ok(format!("b{i}{suffix}"));
        }
        let (state, field) = t.split_once('.').ok_or_else(bad)?;
        let i = self.state(state)?;
        match field {
            // A handle of `dma_map_phys` lives in a state slot: its DMA address is the addr.
            "addr" | "dma" => Ok(format!("s{i}a")),
            "size" => Ok(format!("s{i}z")),
            _ => Err(bad()),
        }
    }

    fn pattern(&self, p: &PatternSpec, len: Option<u64>) -> Result<(String, u64), Plan> {
        let len = p
            .len
            .or(len)
            .ok_or_else(|| Plan::Harness("a written pattern needs `len`".into()))?;
        let at = p.at.unwrap_or(0);
        let code = match (p.seed, p.byte, &p.buf) {
            (Some(seed), None, None) => format!("s{seed:#x}:{at:#x}"),
            (None, Some(b), None) => format!("y{b:#x}"),
            (None, None, Some(name)) => {
                let seed = self.fills.get(name).ok_or_else(|| {
                    Plan::Harness(format!("no buffer `{name}` with a `fill` in this vector"))
                })?;
                format!("s{seed:#x}:{at:#x}")
            }
            _ => {
                return Err(Plan::Harness(
                    "a pattern has exactly one of `seed`, `byte`, `buf`".into(),
                ))
            }
        };
        Ok((code, len))
    }
}

pub fn dir_num(d: &DirSpec) -> u32 {
    match d {
        DirSpec::Name(DirName::Bidirectional) => 0,
        DirSpec::Name(DirName::ToDevice) => 1,
        DirSpec::Name(DirName::FromDevice) => 2,
        DirSpec::Name(DirName::None) => 3,
        DirSpec::Raw(v) => *v,
    }
}

/// The direction of a streaming call, which 7.3 BUG()s on unless it is one of the three valid ones.
fn stream_dir(d: &DirSpec, k: usize, call: &str) -> Result<u32, Plan> {
    match dir_num(d) {
        n @ 0..=2 => Ok(n),
        n => Err(Plan::NotSupported(format!(
            "step {k}: {call} with direction {n}: 7.3 BUG()s on an invalid direction \
             (BUG_ON(!valid_dma_direction(dir))), which would stop the boot"
        ))),
    }
}

pub fn attrs_num(names: &[String]) -> u64 {
    names
        .iter()
        .filter_map(|n| Attrs::from_name(n))
        .fold(0u64, |a, b| a | b.0)
}

/// Whether a step's expectations (either profile) name hazards.
fn expects_hazards(step: &Step) -> bool {
    use dmaconf_engine::model::HazardSet;
    [&step.expect, &step.linux].iter().any(|e| {
        e.as_ref()
            .and_then(|e| e.hazards.as_ref())
            .is_some_and(|h| matches!(h, HazardSet::Exactly(v) if !v.is_empty()))
    })
}

/// Compiles one run of a vector.
pub fn compile(vector: &Vector, choice: &PlatformChoice, presets: &Presets) -> Plan {
    let config = match presets.configure(choice) {
        Ok(c) => c,
        Err(e) => return Plan::Harness(e),
    };
    let domain = match machine_fits(choice, &config) {
        Ok(d) => d,
        Err(e) => return Plan::NotSupported(e),
    };
    if let Some(o) = [
        ("pgsize_bitmap", choice.pgsize_bitmap.is_some()),
        ("aperture_end", choice.aperture_end.is_some()),
    ]
    .iter()
    .find(|(_, set)| *set)
    {
        return Plan::NotSupported(format!("QEMU's VT-d cannot override `{}`", o.0));
    }
    match compile_steps(vector, &config) {
        Ok(mut c) => {
            c.preset = choice.preset.clone();
            c.domain = domain;
            c.untrusted = config.facts.untrusted;
            c.dma_mask = config.facts.dma_mask;
            c.min_align_mask = config.facts.min_align_mask;
            c.config = config;
            Plan::Run(Box::new(c))
        }
        Err(p) => p,
    }
}

fn compile_steps(vector: &Vector, config: &MachineConfig) -> Result<Compiled, Plan> {
    // INTERPRETING § Repetition: a door that cannot repeat a step must not run it once.
    if let Some(n) = vector.steps.iter().position(|s| s.value.repeat.is_some()) {
        return Err(Plan::NotSupported(format!(
            "step {} repeats (`repeat:`); the module's bytecode has no loop",
            n + 1
        )));
    }
    let mut names = Names {
        states: Vec::new(),
        buffers: vector.buffers.keys().cloned().collect(),
        fills: vector
            .buffers
            .iter()
            .filter_map(|(n, b)| b.fill.map(|f| (n.clone(), f)))
            .collect(),
    };
    if names.buffers.len() > MAX_BUFFERS {
        return Err(Plan::NotSupported(format!(
            "more than {MAX_BUFFERS} buffers in one vector"
        )));
    }
    let mut buffers = Vec::new();
    for (i, (name, b)) in vector.buffers.iter().enumerate() {
        if b.at.is_some() {
            return Err(Plan::NotSupported(format!(
                "buffer `{name}` is pinned at a physical address (`at:`); the kernel places memory itself"
            )));
        }
        let off = b.offset & 0xFFF;
        if b.size + off > MAX_BUFFER {
            return Err(Plan::NotSupported(format!(
                "buffer `{name}` is larger than one alloc_pages block (4 MiB)"
            )));
        }
        let fill = b
            .fill
            .map(|f| format!("{f:#x}"))
            .unwrap_or_else(|| "-".into());
        buffers.push(format!("buf {i} {:#x} {off:#x} {fill}", b.size));
    }
    let mut steps = Vec::new();
    let mut hazard_steps = Vec::new();
    let mut transfers = 0u64;
    let mut sleep_ms = 0u64;
    // Platform time on a lazy domain. The model's time moves only by `time.advance`; the kernel's
    // moves all the time, so the door keeps the run where both agree on whether the flush queue's
    // timer has fired: the vector time of the arming (first lazy streaming unmap since the last
    // flush), a `time.advance` that crosses the timeout sleeps one jiffy longer (at least N ms
    // still), and what the kernel cannot reproduce is refused.
    let lazy = config.facts.domain == DomainType::DmaFq && !config.facts.untrusted;
    let mut armed: Option<(usize, u64)> = None;
    let mut now_ms = 0u64;
    for (k, at) in vector.steps.iter().enumerate() {
        let s = &at.value;
        if s.cpu.unwrap_or(0) != 0 {
            return Err(Plan::NotSupported(
                "the boot has one CPU (-smp 1); steps on other CPUs cannot run".into(),
            ));
        }
        let hazards = expects_hazards(s);
        if hazards {
            hazard_steps.push(k);
        }
        let device = s.device_read.is_some() || s.device_write.is_some();
        let line = if device && hazards {
            // Hazards are the model's bookkeeping: the access is not made, so it neither takes
            // edu's 100 ms of virtual time (which would let the flush queue's timer fire) nor
            // changes memory (a later read of what it wrote is then unobserved as well).
            "nx hazards".to_string()
        } else if device && armed.is_some() {
            let (u, t) = armed.unwrap_or_default();
            return Err(Plan::NotSupported(format!(
                "step {k}: a device access while the flush queue holds the lazy unmap of step {u} \
                 ({} ms of vector time ago): an edu transfer takes 100 ms of virtual time, so the \
                 kernel's 10 ms flush timer fires during it, where the vector's time stands still",
                now_ms - t
            )));
        } else if let Some(a) = &s.dma_map_phys {
            let h = names.state(&a.handle)?;
            format!(
                "mp {h} {} {} {} {}",
                names.expr(&a.phys)?,
                names.expr(&a.size)?,
                stream_dir(&a.dir, k, "dma_map_phys")?,
                attrs_num(&a.attrs)
            )
        } else if let Some(a) = &s.dma_unmap_phys {
            if lazy && armed.is_none() {
                armed = Some((k, now_ms));
            }
            format!(
                "um {} {} {} {}",
                names.expr(&a.addr)?,
                names.expr(&a.size)?,
                stream_dir(&a.dir, k, "dma_unmap_phys")?,
                attrs_num(&a.attrs)
            )
        } else if let Some(a) = &s.dma_sync_single_for_cpu {
            format!(
                "sc {} {} {}",
                names.expr(&a.addr)?,
                names.expr(&a.size)?,
                stream_dir(&a.dir, k, "dma_sync_single_for_cpu")?
            )
        } else if let Some(a) = &s.dma_sync_single_for_device {
            format!(
                "sd {} {} {}",
                names.expr(&a.addr)?,
                names.expr(&a.size)?,
                stream_dir(&a.dir, k, "dma_sync_single_for_device")?
            )
        } else if s.dma_need_unmap.is_some() {
            "nu".to_string()
        } else if let Some(a) = &s.time_advance {
            if a.ms > MAX_ADVANCE_MS {
                return Err(Plan::NotSupported(format!(
                    "step {k}: time.advance of {} ms; the door sleeps at most {MAX_ADVANCE_MS} ms",
                    a.ms
                )));
            }
            now_ms += a.ms;
            let mut ms = a.ms;
            if let Some((u, t)) = armed {
                let since = now_ms - t;
                if since >= FQ_TIMEOUT_MS {
                    // The model flushes here; one jiffy more makes sure the kernel's timer
                    // (3 jiffies after the arming) has fired before the next step.
                    ms += JIFFY_MS;
                    armed = None;
                } else if since >= FQ_EARLIEST_SAFE_MS {
                    return Err(Plan::NotSupported(format!(
                        "step {k}: {since} ms after the lazy unmap of step {u} the model's \
                         flush queue has not flushed yet, but the kernel's 10 ms timer is 3 \
                         jiffies at HZ=250 and may fire from 8 ms on: the outcome would depend \
                         on where the jiffy falls"
                    )));
                }
            }
            sleep_ms += ms;
            format!("tm {ms}")
        } else if let Some(a) = &s.dma_iova_try_alloc {
            let st = names.state(&a.state)?;
            format!("ta {st} {} {}", names.expr(&a.phys)?, names.expr(&a.size)?)
        } else if let Some(a) = &s.dma_iova_link {
            let st = names.state(&a.state)?;
            format!(
                "ln {st} {} {} {} {} {}",
                names.expr(&a.phys)?,
                names.expr(&a.offset)?,
                names.expr(&a.size)?,
                dir_num(&a.dir),
                attrs_num(&a.attrs)
            )
        } else if let Some(a) = &s.dma_iova_sync {
            let st = names.state(&a.state)?;
            format!(
                "sy {st} {} {}",
                names.expr(&a.offset)?,
                names.expr(&a.size)?
            )
        } else if let Some(a) = &s.dma_iova_unlink {
            let st = names.state(&a.state)?;
            format!(
                "ul {st} {} {} {} {}",
                names.expr(&a.offset)?,
                names.expr(&a.size)?,
                dir_num(&a.dir),
                attrs_num(&a.attrs)
            )
        } else if let Some(a) = &s.dma_iova_destroy {
            let st = names.state(&a.state)?;
            format!(
                "de {st} {} {} {}",
                names.expr(&a.mapped_len)?,
                dir_num(&a.dir),
                attrs_num(&a.attrs)
            )
        } else if let Some(a) = &s.dma_iova_free {
            format!("fr {}", names.state(&a.state)?)
        } else if let Some(a) = &s.dma_use_iova {
            format!("ui {}", names.state(&a.state)?)
        } else if let Some(a) = &s.dma_iova_size {
            format!("sz {}", names.state(&a.state)?)
        } else if let Some(a) = &s.state_set {
            let st = names.state(&a.state)?;
            format!("ss {st} {} {}", names.expr(&a.addr)?, names.expr(&a.size)?)
        } else if let Some(a) = &s.device_read {
            transfers += 8;
            if let Atom::Int(l) = a.len.0 {
                transfers += 2 * (l as u64).div_ceil(EDU_CHUNK);
            }
            format!("dr {} {}", names.expr(&a.addr)?, names.expr(&a.len)?)
        } else if let Some(a) = &s.device_write {
            let (p, len) = names.pattern(&a.data, None)?;
            transfers += 2 * len.div_ceil(EDU_CHUNK);
            format!("dw {} {p} {len:#x}", names.expr(&a.addr)?)
        } else if let Some(a) = &s.cpu_read {
            format!("cr {} {}", names.expr(&a.addr)?, names.expr(&a.len)?)
        } else if let Some(a) = &s.cpu_write {
            let (p, len) = names.pattern(&a.data, None)?;
            format!("cw {} {p} {len:#x}", names.expr(&a.addr)?)
        } else {
            let name = dmaconf_engine::load::action_name(s).unwrap_or("?");
            return Err(Plan::NotSupported(format!(
                "step {k}: the kernel door does not drive `{name}`"
            )));
        };
        steps.push(format!("s {k} {line}"));
    }
    Ok(Compiled {
        preset: String::new(),
        domain: "DMA",
        untrusted: false,
        dma_mask: 0,
        min_align_mask: 0,
        buffers,
        steps,
        state_names: names.states,
        buffer_names: names.buffers,
        hazard_steps,
        transfers,
        sleep_ms,
        config: config.clone(),
    })
}

/// The program lines of one run, numbered `v` in the boot.
pub fn program(v: usize, c: &Compiled) -> Vec<String> {
    let mut out = vec![
        format!("@reset {} {}", c.domain, u8::from(c.untrusted)),
        format!("begin {v} {}", c.state_names.len()),
        format!("mask {:#x}", c.dma_mask),
    ];
    if c.min_align_mask != 0 {
        out.push(format!("minalign {:#x}", c.min_align_mask));
    }
    out.extend(c.buffers.iter().cloned());
    out.push("@swiotlb".into());
    out.push("@trace".into());
    out.extend(c.steps.iter().cloned());
    out.push("@dump".into());
    out.push("end".into());
    out.push("@swiotlb".into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A preset whose page table cannot express write-only PTEs (VT-d first stage) is not the
    /// machine QEMU emulates, although every other fact matches: its PROT-01 vector would fault
    /// on QEMU's legacy-mode VT-d where it expects a read to go through.
    #[test]
    fn first_stage_vtd_is_another_machine() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors");
        let suite = dmaconf_engine::load_suite(&root);
        let loaded = suite
            .vectors
            .iter()
            .find(|l| l.id == "prot-from-device-readable-on-vtd-first-stage")
            .expect("vector present");
        let v = loaded.vector.as_ref().expect("vector parses");
        let choice = &v.platform.as_ref().expect("platform").0[0];
        match compile(v, choice, &suite.presets) {
            Plan::NotSupported(why) => assert!(why.contains("legacy mode"), "{why}"),
            other => panic!("expected not_supported, got {other:?}"),
        }
    }
}
