//! Parsing the guest console: the module's `DMACONF` lines, /init's `DMACONF-INIT` lines, the
//! trace dumps, DMAR fault reports, and signs of an oops.

use std::collections::BTreeMap;

/// A tracepoint record, in trace order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trace {
    Map { iova: u64, phys: u64, size: u64 },
    Unmap { iova: u64, size: u64, unmapped: u64 },
    Bounced { addr: u64, size: u64 },
}

/// What the console says about one step.
#[derive(Clone, Debug, Default)]
pub struct StepOut {
    /// `key=value` pairs of the result line (`av`, `ret`, `ok`, `err`, `unobserved`).
    pub result: BTreeMap<String, String>,
    pub data: BTreeMap<u64, Vec<u8>>,
    /// Unmapped pages the access touched (page-table readback before the access).
    pub holes: Option<Vec<u64>>,
    /// The guest's DMAR reports while the step ran: (write, fault address).
    pub faults: Vec<(bool, u64)>,
    /// The first fault QEMU logged while the step's transfers ran (`attach_qemu_faults`).
    pub qemu_faults: Vec<(bool, u64)>,
    /// Every state's (addr, size word) after the step.
    pub states: Vec<(u64, u64)>,
    pub events: Vec<Trace>,
    /// Codes the misuse checker module reported while the step's call ran
    /// (`dmaconf-checker: CHECK-NN ...` lines before the step's result line).
    pub detected: Vec<String>,
}

/// One run (`begin V` .. `end`).
#[derive(Clone, Debug, Default)]
pub struct RunOut {
    /// The misuse checker module was loaded for this run (ffi/kernel/checker).
    pub checked: bool,
    pub begin: Option<String>,
    pub reset: Option<String>,
    pub buffers: BTreeMap<usize, Result<u64, String>>,
    pub steps: BTreeMap<usize, StepOut>,
    /// Live mapping runs at the end (`None`: the run did not end).
    pub end_maps: Option<usize>,
    pub swiotlb_before: Option<u64>,
    pub swiotlb_after: Option<u64>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

/// The whole console.
#[derive(Clone, Debug, Default)]
pub struct Console {
    pub runs: BTreeMap<usize, RunOut>,
    pub started: bool,
    pub insmod_ok: bool,
    pub done: bool,
    /// The run in progress when the console stopped (if it did not reach `done`).
    pub last_run: Option<usize>,
    /// Oops / panic / BUG lines.
    pub oops: Vec<String>,
    /// Device steps in the order they ran: (run, step, mark written to edu's config space).
    pub marks: Vec<(usize, usize, u32)>,
}

fn hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

/// The exit code at the start of `rc`: a kernel line can be glued right after /init's echo
/// (`DMACONF-INIT insmod_rc=0[    3.57] DMACONF probe ...`).
fn exit_code(rc: &str) -> Option<i32> {
    let digits: String = rc
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

fn kv(s: &str) -> BTreeMap<String, String> {
    s.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Strips the printk timestamp `[    3.123456] ` and anything a concurrent console writer left
/// before our own markers on the same line.
fn body(line: &str) -> &str {
    let l = line.trim_end_matches('\r');
    for marker in ["DMACONF", "DMAR: [DMA ", "WARNING:", "dmaconf-checker: "] {
        if let Some(i) = l.find(marker) {
            return &l[i..];
        }
    }
    if l.starts_with('[') {
        if let Some(i) = l.find("] ") {
            return &l[i + 2..];
        }
    }
    l
}

fn field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let i = s.find(key)? + key.len();
    s[i..].split_whitespace().next()
}

fn parse_trace(line: &str) -> Option<(Option<usize>, Option<Trace>)> {
    if let Some(i) = line.find("tracing_mark_write: ") {
        let rest = &line[i + "tracing_mark_write: ".len()..];
        let mut it = rest.split_whitespace();
        if it.next() == Some("s") {
            return Some((it.next().and_then(|k| k.parse().ok()), None));
        }
        return Some((None, None));
    }
    if line.contains(" map: IOMMU:") {
        return Some((
            None,
            Some(Trace::Map {
                iova: hex(field(line, "iova=")?)?,
                phys: hex(field(line, "paddr=")?)?,
                size: field(line, "size=")?.parse().ok()?,
            }),
        ));
    }
    if line.contains(" unmap: IOMMU:") {
        return Some((
            None,
            Some(Trace::Unmap {
                iova: hex(field(line, "iova=")?)?,
                size: field(line, " size=")?.parse().ok()?,
                unmapped: field(line, "unmapped_size=")?.parse().ok()?,
            }),
        ));
    }
    if line.contains("swiotlb_bounced:") {
        return Some((
            None,
            Some(Trace::Bounced {
                addr: hex(field(line, "dev_addr=")?)?,
                size: field(line, "size=")?.parse().ok()?,
            }),
        ));
    }
    None
}

/// Splits a console line where a second `DMACONF` line was glued onto it (the module's printk
/// and /init's echo share the serial port: `DMACONF-TRACE-BEGIN[  9.04] DMACONF r 11 ...`).
fn split_glued(line: &str) -> Vec<&str> {
    let mut cuts: Vec<usize> = line
        .match_indices("DMACONF")
        .map(|(i, _)| i)
        .filter(|&i| i > 0)
        .collect();
    if cuts.is_empty() {
        return vec![line];
    }
    cuts.insert(0, 0);
    cuts.push(line.len());
    cuts.windows(2)
        .map(|w| &line[w[0]..w[1]])
        .filter(|s| !s.trim().is_empty())
        .collect()
}

/// Parses a console log.
pub fn parse(text: &str) -> Console {
    let mut c = Console::default();
    let mut cur: Option<usize> = None;
    let mut device_step: Option<usize> = None;
    let mut in_trace = false;
    let mut trace_step: Option<usize> = None;
    let mut pending_reset = String::new();
    // The checker module's findings, kept until the result line of the step that caused them;
    // none are taken once /init has begun unloading it (its leak report is for the whole boot).
    let (mut checker, mut checker_closing) = (false, false);
    let mut detected: Vec<String> = Vec::new();
    for raw in text.lines().flat_map(split_glued) {
        let line = body(raw);
        // The module's printk lines reach the serial console on their own schedule: one can
        // come out after /init has begun the trace dump (seen after a `tm` step's sleep), and
        // is still a result line.
        // The checker module's findings too: the last step's can come out once the dump began
        // (a finding dropped here made a misuse vector's last step flaky).
        if in_trace && !line.starts_with("DMACONF ") && !line.starts_with("dmaconf-checker: ") {
            if line.starts_with("DMACONF-TRACE-END") {
                in_trace = false;
                continue;
            }
            if let (Some(v), Some((step, ev))) = (cur, parse_trace(line)) {
                if step.is_some() {
                    trace_step = step;
                }
                if let (Some(t), Some(k)) = (ev, trace_step) {
                    let r = c.runs.entry(v).or_default();
                    r.steps.entry(k).or_default().events.push(t);
                }
            }
            continue;
        }
        if line.contains("Oops:")
            || line.contains("Kernel panic")
            || line.starts_with("BUG:")
            || line.contains("general protection fault")
        {
            c.oops.push(line.to_string());
        }
        if let Some(rest) = line.strip_prefix("DMACONF-INIT ") {
            if rest.starts_with("start") {
                c.started = true;
            } else if let Some(rc) = rest.strip_prefix("insmod_rc=") {
                c.insmod_ok = exit_code(rc) == Some(0);
            } else if rest.starts_with("done") {
                c.done = true;
            } else if let Some(rc) = rest.strip_prefix("checker_rc=") {
                checker = exit_code(rc) == Some(0);
            } else if rest.starts_with("checker_count") || rest.starts_with("checker_unloaded") {
                checker_closing = true;
            } else if let Some(n) = rest.strip_prefix("swiotlb_used=") {
                if let Some(r) = cur.and_then(|v| c.runs.get_mut(&v)) {
                    let n = n.trim().parse().ok();
                    if r.end_maps.is_none() {
                        r.swiotlb_before = n;
                    } else {
                        r.swiotlb_after = n;
                    }
                }
            } else if rest.starts_with("reset") || rest.starts_with("type") {
                // Belongs to the next run: kept until `begin` arrives.
                pending_reset.push_str(rest);
                pending_reset.push_str("; ");
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("dmaconf-checker: ") {
            if let Some(code) = rest
                .split_whitespace()
                .next()
                .filter(|c| c.starts_with("CHECK-"))
            {
                if cur.is_some() && !checker_closing {
                    detected.push(code.to_string());
                }
            }
            continue;
        }
        if line.starts_with("DMACONF-TRACE-BEGIN") {
            in_trace = true;
            trace_step = None;
            continue;
        }
        if line.starts_with("WARNING:") {
            if let Some(r) = cur.and_then(|v| c.runs.get_mut(&v)) {
                r.warnings.push(line.to_string());
            }
            continue;
        }
        if line.starts_with("DMAR: [DMA ") {
            if let (Some(v), Some(k)) = (cur, device_step) {
                let write = line.starts_with("DMAR: [DMA Write");
                if let Some(addr) = field(line, "fault addr ").and_then(hex) {
                    let st = c.runs.entry(v).or_default().steps.entry(k).or_default();
                    if st.faults.is_empty() {
                        st.faults.push((write, addr));
                    }
                }
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("DMACONF ") else {
            continue;
        };
        let mut words = rest.splitn(3, ' ');
        let what = words.next().unwrap_or("");
        let a1 = words.next().unwrap_or("");
        let a2 = words.next().unwrap_or("");
        match what {
            "begin" => {
                if let Ok(v) = a1.parse::<usize>() {
                    cur = Some(v);
                    c.last_run = Some(v);
                    let r = c.runs.entry(v).or_default();
                    r.checked = checker;
                    detected.clear();
                    r.begin = Some(a2.to_string());
                    r.reset = Some(std::mem::take(&mut pending_reset));
                    if a2.contains("err=") {
                        r.errors.push(format!("begin: {a2}"));
                    }
                }
            }
            "buf" => {
                if let (Some(v), Ok(n)) = (cur, a1.parse::<usize>()) {
                    let m = kv(a2);
                    let r = c.runs.entry(v).or_default();
                    let place = match m.get("phys").and_then(|p| hex(p)) {
                        Some(p) => Ok(p),
                        None => Err(m.get("err").cloned().unwrap_or_else(|| a2.to_string())),
                    };
                    r.buffers.insert(n, place);
                }
            }
            "mark" => {
                if let (Some(v), Ok(k), Ok(m)) =
                    (cur, a1.parse::<usize>(), a2.trim().parse::<u32>())
                {
                    c.marks.push((v, k, m));
                }
            }
            "holes" => {
                if let (Some(v), Ok(k)) = (cur, a1.parse::<usize>()) {
                    device_step = Some(k);
                    let holes = if a2.trim() == "-" {
                        Vec::new()
                    } else {
                        a2.split(',').filter_map(hex).collect()
                    };
                    let r = c.runs.entry(v).or_default();
                    r.steps.entry(k).or_default().holes = Some(holes);
                }
            }
            "data" => {
                if let (Some(v), Ok(k)) = (cur, a1.parse::<usize>()) {
                    let (off, bytes) = a2.split_once(' ').unwrap_or((a2, ""));
                    let bytes: Vec<u8> = (0..bytes.len() / 2)
                        .filter_map(|i| u8::from_str_radix(&bytes[2 * i..2 * i + 2], 16).ok())
                        .collect();
                    if let Some(off) = hex(off) {
                        let r = c.runs.entry(v).or_default();
                        r.steps.entry(k).or_default().data.insert(off, bytes);
                    }
                }
            }
            "r" => {
                if let (Some(v), Ok(k)) = (cur, a1.parse::<usize>()) {
                    device_step = None;
                    let r = c.runs.entry(v).or_default();
                    let st = r.steps.entry(k).or_default();
                    st.result = kv(a2);
                    st.detected.append(&mut detected);
                }
            }
            "st" => {
                if let (Some(v), Ok(k)) = (cur, a1.parse::<usize>()) {
                    let states = a2
                        .trim()
                        .split(',')
                        .filter_map(|p| p.split_once(':'))
                        .filter_map(|(a, s)| Some((hex(a)?, hex(s)?)))
                        .collect();
                    let r = c.runs.entry(v).or_default();
                    r.steps.entry(k).or_default().states = states;
                }
            }
            "end" => {
                if let Some(r) = cur.and_then(|v| c.runs.get_mut(&v)) {
                    let m = kv(&format!("{a1} {a2}"));
                    r.end_maps = m.get("maps").and_then(|n| n.parse().ok());
                }
            }
            "bounce-map" | "bad-command" => {
                if let Some(v) = cur {
                    c.runs
                        .entry(v)
                        .or_default()
                        .errors
                        .push(format!("{what} {a1} {a2}"));
                }
            }
            _ => {}
        }
    }
    c
}

/// Gives each fault of QEMU's log (`vtd_dmar_fault`) to the device step whose marks
/// (`pci_cfg_write edu ... @0x3c`) enclose it. QEMU's log is a stream of its own, so its lines
/// never mix with the guest console's.
pub fn attach_qemu_faults(c: &mut Console, qemu: &str) {
    let mut next = 0;
    let mut active: Option<(usize, usize)> = None;
    for line in qemu.lines() {
        if let Some(rest) = line.strip_prefix("pci_cfg_write edu ") {
            if !rest.contains("@0x3c ") {
                continue;
            }
            let Some(v) = rest.rsplit("<- ").next().and_then(hex) else {
                continue;
            };
            if active.is_some() {
                active = None;
            } else if let Some(&(run, step, m)) = c.marks.get(next) {
                if u64::from(m) == v {
                    active = Some((run, step));
                    next += 1;
                }
            }
        } else if let Some(rest) = line.strip_prefix("vtd_dmar_fault ") {
            let Some((run, step)) = active else { continue };
            let write = field(rest, "write ").is_some_and(|w| w == "1");
            if let Some(addr) = field(rest, "addr ").and_then(hex) {
                let st = c
                    .runs
                    .entry(run)
                    .or_default()
                    .steps
                    .entry(step)
                    .or_default();
                if st.qemu_faults.is_empty() {
                    st.qemu_faults.push((write, addr));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
DMACONF-INIT start uptime=2.97
DMACONF-INIT insmod_rc=0
DMACONF-INIT reset want=DMA untrusted=0 type=DMA
[    3.243594] DMACONF begin 0 dom=3 pgsize=40201000 untrusted=0 mask=ffffffff
[    3.246001] DMACONF buf 0 phys=1021a0000 size=2000
DMACONF-INIT swiotlb_used=0
[    3.262681] DMACONF r 0 av=1021a0000,2000 ret=1
[    3.262815] DMACONF st 0 fffe000:2000,0:0
[    3.491435] DMACONF holes 1 fffe000
[    3.591169] DMAR: [DMA Read NO_PASID] Request device [0000:00:02.0] fault addr 0xfffe000 [fault reason 0x06] PTE Read access is not set
[    3.595680] DMACONF data 1 0 00000000
[    3.595702] DMACONF r 1 av=fffe000,4 ok=1
DMACONF-TRACE-BEGIN
            init-1       [000] ...1.     3.316897: tracing_mark_write: s 0 ta 0 b0 0x2000
            init-1       [000] .....     3.319719: map: IOMMU: iova=0x000000000fffe000 - 0x0000000010000000 paddr=0x00000001021a0000 size=8192
            init-1       [000] .....     3.546095: unmap: IOMMU: iova=0x000000000fffe000 - 0x0000000010000000 size=8192 unmapped_size=4096
            init-1       [000] .....     4.885702: swiotlb_bounced: dev_name: 0000:00:02.0 dma_mask=fffffff dev_addr=102136064 size=3996 NORMAL
DMACONF-TRACE-END
[    3.625154] DMACONF end maps=0 res=1
DMACONF-INIT swiotlb_used=2
DMACONF-INIT done uptime=3.77
";

    #[test]
    fn parses_a_run() {
        let c = parse(LOG);
        assert!(c.started && c.insmod_ok && c.done);
        let r = &c.runs[&0];
        assert_eq!(r.buffers[&0], Ok(0x1021a0000));
        assert_eq!(r.steps[&0].result["ret"], "1");
        assert_eq!(r.steps[&0].states[0], (0xfffe000, 0x2000));
        assert_eq!(r.steps[&1].faults, vec![(false, 0xfffe000)]);
        assert_eq!(r.steps[&1].holes, Some(vec![0xfffe000]));
        assert_eq!(r.steps[&1].data[&0], vec![0, 0, 0, 0]);
        assert_eq!(
            r.steps[&0].events,
            vec![
                Trace::Map {
                    iova: 0xfffe000,
                    phys: 0x1021a0000,
                    size: 8192
                },
                Trace::Unmap {
                    iova: 0xfffe000,
                    size: 8192,
                    unmapped: 4096
                },
                Trace::Bounced {
                    addr: 0x102136064,
                    size: 3996
                }
            ]
        );
        assert_eq!(r.end_maps, Some(0));
        assert_eq!((r.swiotlb_before, r.swiotlb_after), (Some(0), Some(2)));
        assert!(r.reset.as_deref().unwrap_or("").contains("type=DMA"));
    }

    #[test]
    fn result_line_inside_the_trace_dump() {
        let log = "\
DMACONF-INIT start uptime=2.97
DMACONF-INIT insmod_rc=0
[    9.05] DMACONF begin 37 dom=b pgsize=40201000 untrusted=0 mask=ffffffffffffffff
[    9.07] DMACONF r 0 av=ffffc000,2000
DMACONF-TRACE-BEGIN[    9.09] DMACONF r 1 av=f slept_us=15359
[    9.09] DMACONF st 1 ffffc000:2000,0:0
            init-1       [000] ...1.     9.11: tracing_mark_write: s 0 um s3a 0x2000 0 0
            init-1       [000] .....     9.11: unmap: IOMMU: iova=0x00000000ffffc000 - 0x00000000ffffe000 size=8192 unmapped_size=8192
            init-1       [000] ...1.     9.11: tracing_mark_write: s 1 tm 15
DMACONF-TRACE-END
[    9.10] DMACONF end maps=0 res=4
";
        let c = parse(log);
        let r = &c.runs[&37];
        assert_eq!(r.steps[&1].result["slept_us"], "15359");
        assert_eq!(r.steps[&1].states[0], (0xffffc000, 0x2000));
        assert_eq!(r.steps[&0].events.len(), 1);
        assert!(r.steps[&1].events.is_empty());
        assert_eq!(r.end_maps, Some(0));
    }

    #[test]
    fn qemu_fault_trace_and_oops() {
        let log = "\
DMACONF-INIT start uptime=2.97
DMACONF-INIT insmod_rc=0
sh: write error[    3.2] DMACONF begin 4 dom=3 pgsize=40201000 untrusted=0 mask=fffffff
[    3.4] DMACONF holes 2 -
[    3.4] DMACONF mark 2 7
[    3.5] DMACONF r 2 av=ffff000,100 ok=1
[    3.6] BUG: kernel NULL pointer dereference, address: 0000000000000000
[    3.7] Kernel panic - not syncing: Fatal exception
";
        let qemu = "\
pci_cfg_write edu 00:02.0 @0x3c <- 0xb
vtd_dmar_fault sid 0x10 fault 6 addr 0x8000000 write 0
pci_cfg_write edu 00:02.0 @0x3c <- 0x7
vtd_dmar_fault sid 0x10 fault 5 addr 0xffff000 write 1
vtd_dmar_fault sid 0x10 fault 5 addr 0xffff004 write 1
pci_cfg_write edu 00:02.0 @0x3c <- 0xb
vtd_dmar_fault sid 0x10 fault 6 addr 0x8001000 write 0
";
        let mut c = parse(log);
        attach_qemu_faults(&mut c, qemu);
        assert!(c.started && !c.done);
        assert_eq!(c.last_run, Some(4));
        let r = &c.runs[&4];
        assert_eq!(r.steps[&2].qemu_faults, vec![(true, 0xffff000)]);
        assert!(r.steps[&2].faults.is_empty());
        assert_eq!(r.steps[&2].holes, Some(vec![]));
        assert!(r.end_maps.is_none());
        assert_eq!(c.oops.len(), 2);
    }

    #[test]
    fn a_finding_printed_after_the_trace_dump_began_is_kept() {
        // /init's dump starts while the module's last printk lines are still on their way to
        // the serial console: the finding and its step's result line both come out inside it.
        let log = "\
DMACONF-INIT start uptime=2.97
DMACONF-INIT checker_rc=0
DMACONF-INIT insmod_rc=0
[    3.24] DMACONF begin 0 dom=3 pgsize=40201000 untrusted=0 mask=ffffffff
[    3.26] DMACONF r 0 av=0,1000 ret=0
DMACONF-TRACE-BEGIN
[    3.27] dmaconf-checker: CHECK-01 no_reservation: 0000:00:02.0 state ffffffffc01a26e0: no successful dma_iova_try_alloc
[    3.28] DMACONF r 1 av= ok=1
DMACONF-TRACE-END
DMACONF-INIT done uptime=3.77
";
        let c = parse(log);
        let r = &c.runs[&0];
        assert!(r.steps[&0].detected.is_empty());
        assert_eq!(r.steps[&1].detected, vec!["CHECK-01".to_string()]);
    }

    #[test]
    fn checker_findings_go_to_the_step_whose_call_made_them() {
        let log = "\
DMACONF-INIT start uptime=2.97
[    3.10] dmaconf-checker: watching dma_iova_* (spec/10-misuse-checker.md)
DMACONF-INIT checker_rc=0
DMACONF-INIT insmod_rc=0[    3.57] DMACONF probe 0000:00:02.0 ident=10000ed
[    3.24] DMACONF begin 0 dom=3 pgsize=40201000 untrusted=0 mask=ffffffff
[    3.26] DMACONF r 0 av=0,1000 ret=1
[    3.27] dmaconf-checker: CHECK-14 free_with_live_links: 0000:00:02.0 state ffffffffc01a26e0: links still live
[    3.28] DMACONF r 1 av= ok=1
[    3.29] DMACONF r 2 av= ok=1
DMACONF-INIT checker_count CHECK-14 free_with_live_links 1
[    3.30] dmaconf-checker: CHECK-22 leaked_link: 0000:00:02.0 state ffffffffc01a26e0: links live at unload
DMACONF-INIT done uptime=3.77
";
        let c = parse(log);
        assert!(c.insmod_ok, "a line glued after insmod_rc=0 is still rc 0");
        let r = &c.runs[&0];
        assert!(r.checked);
        assert!(r.steps[&0].detected.is_empty());
        assert_eq!(r.steps[&1].detected, vec!["CHECK-14".to_string()]);
        assert!(
            r.steps[&2].detected.is_empty(),
            "the unload report is no step's"
        );
    }
}
