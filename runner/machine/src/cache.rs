//! CPU caches as a non-coherent device sees them.
//!
//! A coherent device (and every x86 device) snoops the CPU caches, so for it the caches are
//! invisible: CPU and device data go straight to memory and cache maintenance changes nothing.
//! For a non-coherent device the machine keeps one level of write-back, write-allocate data
//! cache in lines of `cache_line` bytes (the preset's `dma_get_cache_alignment()`; arm64 does
//! its maintenance in lines of `CTR_EL0.DminLine`, which is the same size on the machines
//! modelled). What each line holds is tracked byte by byte:
//!
//! * **dirty**: the CPU wrote the byte and the line has not been written back since. The
//!   device reads memory, so it misses the byte (`dirty_line_missed`). A write-back writes the
//!   *whole line*, so any dirty byte in a line also threatens device writes to the rest of it.
//! * **stale**: the device wrote the byte to memory after the line was loaded. A CPU load that
//!   hits the line returns the old value (`stale_cpu_line`).
//! * **lost** (kept after the line is gone): an invalidate dropped the byte while it was dirty,
//!   so the CPU's write never reached memory (`dirty_line_discarded` on the next CPU read). A
//!   later CPU write of the byte, or a device write of it (memory then holds the newest value),
//!   ends the loss.
//!
//! CPU loads and stores allocate lines; the CPU may also pull lines in at any time by itself
//! (`speculate`). Device accesses never allocate lines. Maintenance is lowered per architecture
//! as the 7.3 `arch_sync_dma_for_device` / `arch_sync_dma_for_cpu` do:
//!
//! | arch | for_device | for_cpu (not TO_DEVICE) | completes |
//! |---|---|---|---|
//! | arm64 | clean, any dir, lines `[start down, end)` at least one | invalidate; a partial first or last line is cleaned and invalidated; at least one line | at the barrier (`dsb sy`) |
//! | riscv | clean for TO_DEVICE, FROM_DEVICE, BIDIRECTIONAL; nothing otherwise | invalidate whole lines, partial edges included (FROM/BIDIR only) | at once |
//! | arm (v7) | FROM_DEVICE: invalidate with partial edges cleaned; else clean | invalidate with partial edges cleaned | at once |
//! | x86 | never has a line model | | |
//!
//! arm64's operations are the `_nosync` forms: the machine queues them and applies them, in
//! order, at `barrier`. Until then a queued clean has not reached memory (a device read of its
//! dirty bytes is `dirty_line_missed`, a device write under it will be overwritten when it
//! lands), and a queued invalidate has not dropped the line (a CPU load may still hit it).
//! This is the worst case the architecture allows, as the IOTLB model assumes the worst case
//! for unsynced translations.

use std::collections::BTreeMap;

use dmaconf_platform::{Arch, Dir, PlatformFacts};

use crate::events::{Event, Hazard};
use crate::memory::PhysMemory;

/// Line size used when a preset gives one the model cannot use (not a power of two in
/// 4..=4096 bytes).
pub const FALLBACK_LINE: u64 = 64;

/// One cached line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Line {
    data: Vec<u8>,
    dirty: Vec<bool>,
    stale: Vec<bool>,
}

/// An arm64 `_nosync` operation waiting for the barrier.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    /// `dc cvac` of a line that was dirty when issued: the line's bytes at that moment, and
    /// which of them were dirty. Lands in memory (the whole line) at the barrier.
    Clean {
        line: u64,
        data: Vec<u8>,
        dirty: Vec<bool>,
    },
    /// `dc ivac`.
    Inval { line: u64 },
    /// `dc civac`.
    CleanInval { line: u64 },
}

impl Pending {
    fn line(&self) -> u64 {
        match self {
            Pending::Clean { line, .. }
            | Pending::Inval { line }
            | Pending::CleanInval { line } => *line,
        }
    }
}

/// A single line operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Clean,
    Inval,
    CleanInval,
}

/// The line model of a non-coherent device's view of the CPU caches.
#[derive(Clone, Debug)]
struct LineModel {
    arch: Arch,
    line: u64,
    lines: BTreeMap<u64, Line>,
    pending: Vec<Pending>,
    lost: BTreeMap<u64, Vec<bool>>,
}

/// The CPU caches of the machine.
#[derive(Clone, Debug)]
pub struct CpuCaches {
    model: Option<LineModel>,
}

/// Collects hazard addresses into one hazard per contiguous run of bytes.
struct Runs {
    last: Option<u64>,
    out: Vec<Hazard>,
    make: fn(u64) -> Hazard,
}

impl Runs {
    fn new(make: fn(u64) -> Hazard) -> Runs {
        Runs {
            last: None,
            out: Vec::new(),
            make,
        }
    }
    fn hit(&mut self, addr: u64) {
        if self.last.and_then(|l| l.checked_add(1)) != Some(addr) {
            self.out.push((self.make)(addr));
        }
        self.last = Some(addr);
    }
}

impl CpuCaches {
    /// The caches as `facts` make them: a line model only for a device that is not coherent
    /// on an architecture with cache maintenance (x86 devices are always coherent).
    pub fn new(facts: &PlatformFacts) -> CpuCaches {
        let modelled = !facts.coherent && facts.arch != Arch::X86;
        let line = if facts.cache_line.is_power_of_two() && (4..=4096).contains(&facts.cache_line) {
            facts.cache_line
        } else {
            FALLBACK_LINE
        };
        CpuCaches {
            model: modelled.then(|| LineModel {
                arch: facts.arch,
                line,
                lines: BTreeMap::new(),
                pending: Vec::new(),
                lost: BTreeMap::new(),
            }),
        }
    }

    /// Does this machine keep cache lines (a non-coherent device)?
    pub fn modelled(&self) -> bool {
        self.model.is_some()
    }

    /// A CPU store of `data` at `phys`.
    pub fn cpu_write(&mut self, mem: &mut PhysMemory, phys: u64, data: &[u8]) -> u64 {
        match &mut self.model {
            None => mem.write(phys, data),
            Some(m) => m.cpu_write(mem, phys, data),
        }
    }

    /// A CPU load of `len` bytes at `phys` (already clamped by the caller).
    pub fn cpu_read(&mut self, mem: &PhysMemory, phys: u64, len: u64) -> (Vec<u8>, Vec<Hazard>) {
        match &mut self.model {
            None => (mem.read(phys, len), Vec::new()),
            Some(m) => m.cpu_read(mem, phys, len),
        }
    }

    /// The CPU pulls the lines of `[phys, phys + len)` into the cache by itself (a prefetch, a
    /// speculative load): absent lines are loaded clean from memory; present lines are left
    /// alone. Nothing happens on a coherent device.
    pub fn speculate(&mut self, mem: &PhysMemory, phys: u64, len: u64) {
        if let Some(m) = &mut self.model {
            m.for_each_line(phys, len, |m, line, _, _| {
                m.load(mem, line);
            });
        }
    }

    /// A device read of the physical range: the hazards it meets (it reads memory, whatever
    /// the caches hold).
    pub fn device_read(&self, phys: u64, len: u64) -> Vec<Hazard> {
        match &self.model {
            None => Vec::new(),
            Some(m) => m.device_read(phys, len),
        }
    }

    /// A device write of `data` at `phys`: memory takes it; lines that hold the bytes become
    /// stale there. Returns the hazards.
    pub fn device_write(&mut self, mem: &mut PhysMemory, phys: u64, data: &[u8]) -> Vec<Hazard> {
        match &mut self.model {
            None => {
                mem.write(phys, data);
                Vec::new()
            }
            Some(m) => m.device_write(mem, phys, data),
        }
    }

    /// A copy made by the CPU (`memcpy`/`memmove` of a bounce): a load of the source and a
    /// store of the destination through the caches. Returns the bytes copied.
    pub fn cpu_copy(&mut self, mem: &mut PhysMemory, dst: u64, src: u64, len: u64) -> u64 {
        let Some(m) = &mut self.model else {
            return mem.copy(dst, src, len);
        };
        let len = crate::memory::clamp_len(src, len).min(crate::memory::clamp_len(dst, len));
        // memmove: copy backwards when the destination starts inside the source.
        const CHUNK: u64 = 0x1_0000;
        let backwards = dst > src && dst - src < len;
        let mut pieces = Vec::new();
        let mut done = 0;
        while done < len {
            let n = CHUNK.min(len - done);
            pieces.push((done, n));
            done += n;
        }
        if backwards {
            pieces.reverse();
        }
        for (off, n) in pieces {
            let (bytes, _) = m.cpu_read(mem, src + off, n);
            m.cpu_write(mem, dst + off, &bytes);
        }
        len
    }

    /// A CPU `memset`.
    pub fn cpu_fill(&mut self, mem: &mut PhysMemory, dst: u64, byte: u8, len: u64) -> u64 {
        let Some(m) = &mut self.model else {
            return mem.fill(dst, byte, len);
        };
        let len = crate::memory::clamp_len(dst, len);
        let block = vec![byte; 0x1_0000];
        let mut done = 0;
        while done < len {
            let n = (block.len() as u64).min(len - done);
            m.cpu_write(mem, dst + done, &block[..n as usize]);
            done += n;
        }
        len
    }

    /// Models `arch_sync_dma_for_device`, lowered per architecture (see the module table).
    pub fn sync_for_device(
        &mut self,
        mem: &mut PhysMemory,
        phys: u64,
        len: u64,
        dir: Dir,
    ) -> Event {
        if let Some(m) = &mut self.model {
            m.for_device(mem, phys, len, dir);
        }
        Event::CacheSyncForDevice {
            phys,
            len,
            dir: dir.name(),
        }
    }

    /// Models `arch_sync_dma_for_cpu`, lowered per architecture.
    pub fn sync_for_cpu(&mut self, mem: &mut PhysMemory, phys: u64, len: u64, dir: Dir) -> Event {
        if let Some(m) = &mut self.model {
            m.for_cpu(mem, phys, len, dir);
        }
        Event::CacheSyncForCpu {
            phys,
            len,
            dir: dir.name(),
        }
    }

    /// Models `arch_sync_dma_flush`: on arm64 the `dsb sy` that completes the queued
    /// maintenance; elsewhere nothing.
    pub fn barrier(&mut self, mem: &mut PhysMemory) -> Event {
        if let Some(m) = &mut self.model {
            m.complete(mem);
        }
        Event::CacheBarrier
    }

    /// Cached lines, (line address, dirty bytes, stale bytes), for tests and reports.
    pub fn lines(&self) -> Vec<(u64, usize, usize)> {
        self.model
            .as_ref()
            .map(|m| {
                m.lines
                    .iter()
                    .map(|(a, l)| {
                        (
                            *a,
                            l.dirty.iter().filter(|d| **d).count(),
                            l.stale.iter().filter(|d| **d).count(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of arm64 operations still waiting for the barrier.
    pub fn pending(&self) -> usize {
        self.model.as_ref().map_or(0, |m| m.pending.len())
    }
}

impl LineModel {
    fn base(&self, addr: u64) -> u64 {
        addr & !(self.line - 1)
    }

    /// Calls `f(model, line base, first offset, one-past-last offset)` for every line that
    /// `[phys, phys + len)` touches (len already clamped so that the range does not wrap).
    fn for_each_line(
        &mut self,
        phys: u64,
        len: u64,
        mut f: impl FnMut(&mut LineModel, u64, usize, usize),
    ) {
        let len = crate::memory::clamp_len(phys, len);
        let end = u128::from(phys) + u128::from(len);
        let mut at = u128::from(phys);
        while at < end {
            let base = self.base(at as u64);
            let line_end = (u128::from(base) + u128::from(self.line)).min(end);
            let from = (at - u128::from(base)) as usize;
            let to = (line_end - u128::from(base)) as usize;
            f(self, base, from, to);
            at = line_end;
        }
    }

    /// Makes `line` present, loading it clean from memory if it is not.
    fn load(&mut self, mem: &PhysMemory, line: u64) -> &mut Line {
        let n = self.line as usize;
        self.lines.entry(line).or_insert_with(|| Line {
            data: mem.read(line, n as u64),
            dirty: vec![false; n],
            stale: vec![false; n],
        })
    }

    fn cpu_write(&mut self, mem: &PhysMemory, phys: u64, data: &[u8]) -> u64 {
        let len = crate::memory::clamp_len(phys, data.len() as u64);
        let mut done = 0usize;
        self.for_each_line(phys, len, |m, line, from, to| {
            let n = to - from;
            let l = m.load(mem, line);
            // A line at the top of the address space may be shorter than a full line.
            let to_in = to.min(l.data.len());
            let from_in = from.min(to_in);
            l.data[from_in..to_in].copy_from_slice(&data[done..done + (to_in - from_in)]);
            for i in from_in..to_in {
                l.dirty[i] = true;
                l.stale[i] = false;
            }
            if let Some(lost) = m.lost.get_mut(&line) {
                for b in lost.iter_mut().take(to).skip(from) {
                    *b = false;
                }
                if lost.iter().all(|b| !b) {
                    m.lost.remove(&line);
                }
            }
            done += n;
        });
        len
    }

    fn cpu_read(&mut self, mem: &PhysMemory, phys: u64, len: u64) -> (Vec<u8>, Vec<Hazard>) {
        let len = crate::memory::clamp_len(phys, len);
        let mut out = Vec::with_capacity(len as usize);
        let mut stale = Runs::new(|phys| Hazard::StaleCpuLine { phys });
        let mut lost = Runs::new(|phys| Hazard::DirtyLineDiscarded { phys });
        self.for_each_line(phys, len, |m, line, from, to| {
            let lost_mask = m.lost.get(&line).cloned();
            let l = m.load(mem, line);
            for i in from..to {
                out.push(l.data.get(i).copied().unwrap_or(0));
                if l.stale.get(i).copied().unwrap_or(false) {
                    stale.hit(line + i as u64);
                }
                if lost_mask.as_ref().is_some_and(|v| v[i]) {
                    lost.hit(line + i as u64);
                }
            }
        });
        let mut hazards = stale.out;
        hazards.extend(lost.out);
        (out, hazards)
    }

    fn device_read(&self, phys: u64, len: u64) -> Vec<Hazard> {
        let len = crate::memory::clamp_len(phys, len);
        let mut missed = Runs::new(|phys| Hazard::DirtyLineMissed { phys });
        let end = u128::from(phys) + u128::from(len);
        let mut at = u128::from(phys);
        while at < end {
            let line = self.base(at as u64);
            let line_end = (u128::from(line) + u128::from(self.line)).min(end);
            let cached = self.lines.get(&line);
            let queued: Vec<&Vec<bool>> = self
                .pending
                .iter()
                .filter_map(|p| match p {
                    Pending::Clean { line: l, dirty, .. } if *l == line => Some(dirty),
                    _ => None,
                })
                .collect();
            for a in at..line_end {
                let i = (a - u128::from(line)) as usize;
                let dirty = cached.is_some_and(|l| l.dirty.get(i).copied().unwrap_or(false))
                    || queued.iter().any(|d| d.get(i).copied().unwrap_or(false));
                if dirty {
                    missed.hit(a as u64);
                }
            }
            at = line_end;
        }
        missed.out
    }

    fn device_write(&mut self, mem: &mut PhysMemory, phys: u64, data: &[u8]) -> Vec<Hazard> {
        let len = crate::memory::clamp_len(phys, data.len() as u64);
        let mut missed = Runs::new(|phys| Hazard::DirtyLineMissed { phys });
        self.for_each_line(phys, len, |m, line, from, to| {
            // A later write-back of a dirty line (or a clean still on its way) covers the whole
            // line, so it would land over the device's bytes.
            let threatened = m
                .lines
                .get(&line)
                .is_some_and(|l| l.dirty.iter().any(|d| *d))
                || m.pending
                    .iter()
                    .any(|p| matches!(p, Pending::Clean { line: l, .. } if *l == line));
            if let Some(l) = m.lines.get_mut(&line) {
                for i in from..to.min(l.stale.len()) {
                    l.stale[i] = true;
                }
            }
            // Memory now holds the newest value of these bytes: a CPU write lost before is
            // superseded by the device's.
            if let Some(lost) = m.lost.get_mut(&line) {
                for b in lost.iter_mut().take(to).skip(from) {
                    *b = false;
                }
                if lost.iter().all(|b| !b) {
                    m.lost.remove(&line);
                }
            }
            if threatened {
                missed.hit(line + from as u64);
            }
        });
        mem.write(phys, &data[..len as usize]);
        missed.out
    }

    /// Applies one line operation at once.
    fn apply(&mut self, mem: &mut PhysMemory, line: u64, op: Op) {
        match op {
            Op::Clean => {
                if let Some(l) = self.lines.get_mut(&line) {
                    if l.dirty.iter().any(|d| *d) {
                        mem.write(line, &l.data);
                        l.dirty.iter_mut().for_each(|d| *d = false);
                    }
                }
            }
            Op::CleanInval => {
                self.apply(mem, line, Op::Clean);
                self.lines.remove(&line);
            }
            Op::Inval => {
                if let Some(l) = self.lines.remove(&line) {
                    if l.dirty.iter().any(|d| *d) {
                        let lost = self
                            .lost
                            .entry(line)
                            .or_insert_with(|| vec![false; self.line as usize]);
                        for (i, d) in l.dirty.iter().enumerate() {
                            if *d {
                                lost[i] = true;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Issues a line operation: arm64 queues it until the barrier, other architectures
    /// complete it at once.
    fn issue(&mut self, mem: &mut PhysMemory, line: u64, op: Op) {
        if self.arch != Arch::Arm64 {
            self.apply(mem, line, op);
            return;
        }
        match op {
            Op::Clean => {
                // A clean of a clean (or absent) line moves no data: nothing is in flight.
                if let Some(l) = self.lines.get_mut(&line) {
                    if l.dirty.iter().any(|d| *d) {
                        let p = Pending::Clean {
                            line,
                            data: l.data.clone(),
                            dirty: l.dirty.clone(),
                        };
                        l.dirty.iter_mut().for_each(|d| *d = false);
                        self.pending.push(p);
                    }
                }
            }
            Op::Inval => self.pending.push(Pending::Inval { line }),
            Op::CleanInval => self.pending.push(Pending::CleanInval { line }),
        }
    }

    /// The barrier: queued operations land, in the order they were issued.
    fn complete(&mut self, mem: &mut PhysMemory) {
        for p in std::mem::take(&mut self.pending) {
            match p {
                Pending::Clean { line, data, .. } => {
                    mem.write(line, &data);
                }
                other => {
                    let op = if matches!(other, Pending::Inval { .. }) {
                        Op::Inval
                    } else {
                        Op::CleanInval
                    };
                    self.apply(mem, other.line(), op);
                }
            }
        }
    }

    /// The cached lines a maintenance loop over `[start, end)` reaches, with the operation each
    /// gets. The loop starts at the line of `start`. `at_least_one`: it tests its bound after
    /// the first line (arm64's loops, arm v7's clean), else before (riscv's CMO loop, arm v7's
    /// invalidate). `edges`: a partial first or last line is cleaned and invalidated instead
    /// of `op` (arm64 `dcache_inval_poc`, arm v7 `v7_dma_inv_range`), and a partial last line
    /// is reached. Lines that are not cached are skipped: an operation on them moves no data,
    /// and operations on different lines are independent, so only the set matters.
    fn reach(
        &self,
        start: u64,
        len: u64,
        op: Op,
        at_least_one: bool,
        edges: bool,
    ) -> Vec<(u64, Op)> {
        let line = u128::from(self.line);
        let mask = line - 1;
        let end = u128::from(start) + u128::from(len);
        let lo = u128::from(start) & !mask;
        let mut hi = if edges { (end + mask) & !mask } else { end };
        if at_least_one {
            hi = hi.max(lo + line);
        }
        let start_partial = u128::from(start) & mask != 0;
        let end_line = end & !mask;
        let end_partial = end & mask != 0;
        self.lines
            .range(lo as u64..)
            .map(|(a, _)| *a)
            .take_while(|a| u128::from(*a) < hi)
            .map(|a| {
                let edge = edges
                    && ((start_partial && u128::from(a) == lo)
                        || (end_partial && u128::from(a) == end_line));
                (a, if edge { Op::CleanInval } else { op })
            })
            .collect()
    }

    fn for_device(&mut self, mem: &mut PhysMemory, phys: u64, len: u64, dir: Dir) {
        let ops = match self.arch {
            Arch::Arm64 => self.reach(phys, len, Op::Clean, true, false),
            Arch::Riscv => match dir {
                Dir::TO_DEVICE | Dir::FROM_DEVICE | Dir::BIDIRECTIONAL => {
                    self.reach(phys, len, Op::Clean, false, false)
                }
                _ => Vec::new(),
            },
            Arch::Arm if dir == Dir::FROM_DEVICE => self.reach(phys, len, Op::Inval, false, true),
            Arch::Arm => self.reach(phys, len, Op::Clean, true, false),
            Arch::X86 => Vec::new(),
        };
        for (line, op) in ops {
            self.issue(mem, line, op);
        }
    }

    fn for_cpu(&mut self, mem: &mut PhysMemory, phys: u64, len: u64, dir: Dir) {
        let ops = match self.arch {
            Arch::Arm64 if dir != Dir::TO_DEVICE => self.reach(phys, len, Op::Inval, true, true),
            Arch::Arm if dir != Dir::TO_DEVICE => self.reach(phys, len, Op::Inval, false, true),
            Arch::Riscv if dir == Dir::FROM_DEVICE || dir == Dir::BIDIRECTIONAL => {
                self.reach(phys, len, Op::Inval, false, false)
            }
            _ => Vec::new(),
        };
        for (line, op) in ops {
            self.issue(mem, line, op);
        }
    }
}

#[cfg(test)]
mod tests;
