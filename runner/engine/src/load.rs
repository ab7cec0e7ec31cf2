//! Finding and reading vector files. One malformed vector becomes one `harness_error` result
//! naming its file:line:column; the other vectors of the file still load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dmaconf_platform::{Attrs, WarnCode};

use crate::model::{Header, Step, Vector, EVENT_KINDS, FORMAT_VERSION};
use crate::preset::Presets;
use crate::yaml::{self, Located};

/// The most times one step may repeat (`spec/INTERPRETING.md` § "Limits"): 2^20, four times
/// "link 1 GiB in 4 KiB pieces".
pub const MAX_REPEAT: u64 = 1 << 20;
/// The most steps one vector may run, repetitions counted.
pub const MAX_EXECUTED_STEPS: u64 = 1 << 22;

/// A vector as loaded: its identity, and either the vector or what is wrong with it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub file: PathBuf,
    /// First line of the vector's document.
    pub line: u64,
    pub id: String,
    pub area: String,
    pub vector: Result<Vector, Located>,
}

/// Everything under a vectors directory.
#[derive(Clone, Debug, Default)]
pub struct Suite {
    pub presets: Presets,
    pub vectors: Vec<Loaded>,
    /// Problems that are not one vector's (unreadable files, bad presets).
    pub errors: Vec<Located>,
}

/// Vector files: every `*.yaml` below `root` except the presets folder, sorted by path, and
/// what could not be walked. Symbolic links are followed once: a link back to a folder being
/// walked is a loop and is reported, not followed (walkdir keeps the ancestors); a `*.yaml`
/// that is not a regular file (a FIFO, a device) is reported and never opened, so it cannot
/// hang the run.
pub fn vector_files(root: &Path) -> (Vec<PathBuf>, Vec<Located>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !(e.depth() > 0 && e.file_type().is_dir() && e.file_name() == "presets"));
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_dir() => {}
            Ok(e) => {
                if e.path().extension().is_none_or(|x| x != "yaml") {
                    continue;
                }
                if e.file_type().is_file() {
                    out.push(e.into_path());
                } else {
                    errors.push(Located::new(
                        e.path(),
                        1,
                        1,
                        "not a regular file (a FIFO, socket or device): not read",
                    ));
                }
            }
            Err(e) => {
                let at = e.path().unwrap_or(root).to_path_buf();
                let message = match e.loop_ancestor() {
                    Some(a) => {
                        format!("symbolic link loop back to `{}`: not followed", a.display())
                    }
                    None => format!(
                        "cannot walk: {}",
                        e.io_error()
                            .map_or_else(|| e.to_string(), |io| io.to_string())
                    ),
                };
                errors.push(Located::new(&at, 1, 1, message));
            }
        }
    }
    out.sort();
    (out, errors)
}

/// Reads an input file, refusing anything but a regular file before opening it (opening a FIFO
/// for reading would block).
pub fn read_regular(file: &Path) -> Result<String, Located> {
    match std::fs::metadata(file) {
        Ok(m) if !m.is_file() => {
            return Err(Located::new(
                file,
                1,
                1,
                "not a regular file (a FIFO, socket or device): not read",
            ))
        }
        Ok(_) => {}
        Err(e) => return Err(Located::new(file, 1, 1, format!("cannot read: {e}"))),
    }
    std::fs::read_to_string(file).map_err(|e| Located::new(file, 1, 1, format!("cannot read: {e}")))
}

/// Loads presets (`root/presets`) and every vector file below `root`.
pub fn load_suite(root: &Path) -> Suite {
    let mut suite = Suite::default();
    let (presets, errors) = Presets::load(&root.join("presets"));
    suite.presets = presets;
    suite.errors.extend(errors);
    if !root.is_dir() {
        suite.errors.push(Located::new(
            root,
            1,
            1,
            "the vectors directory does not exist",
        ));
    }
    let (files, walk_errors) = vector_files(root);
    suite.errors.extend(walk_errors);
    for file in files {
        match read_regular(&file) {
            Ok(text) => suite.vectors.extend(load_file(&file, &text)),
            Err(e) => suite.errors.push(e),
        }
    }
    let rules = root
        .parent()
        .map(|r| r.join("spec"))
        .filter(|s| s.is_dir())
        .and_then(|s| crate::lint::spec_rules(&s).ok());
    refuse_across_files(&mut suite, rules.as_ref());
    suite
}

/// What one file cannot see and `run` must refuse as `lint` does (issue 15): an id the suite
/// already uses (the first keeps it, each later one is a `harness_error` naming the first), a
/// platform preset `vectors/presets/` lacks, and, when the repository's `spec/` is at hand, a
/// rule it does not define.
fn refuse_across_files(suite: &mut Suite, rules: Option<&BTreeMap<String, String>>) {
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    for l in &mut suite.vectors {
        let here = format!("{}:{}", l.file.display(), l.line);
        let refuse = |m: String| Located::new(&l.file, l.line, 1, m);
        if let Some(at) = first.get(&l.id) {
            let m = format!("vector id `{}` is already used at {at}", l.id);
            l.vector = Err(refuse(m));
            continue;
        }
        first.insert(l.id.clone(), here);
        let Ok(v) = &l.vector else { continue };
        let unknown_rule = rules.and_then(|r| v.rules.iter().find(|x| !r.contains_key(*x)));
        let unknown_preset = v.platform.iter().flat_map(|p| &p.0).find(|c| {
            !suite.presets.by_id.contains_key(&c.preset)
                && !suite.presets.broken.contains_key(&c.preset)
        });
        if let Some(rule) = unknown_rule {
            let m = format!(
                "vector `{}` cites rule {rule}, which spec/ does not define",
                v.id
            );
            l.vector = Err(refuse(m));
        } else if let Some(c) = unknown_preset {
            let m = format!(
                "vector `{}`: unknown platform preset `{}` (no vectors/presets/{}.yaml)",
                v.id, c.preset, c.preset
            );
            l.vector = Err(refuse(m));
        }
    }
}

/// The `id:` of a document read as text, for naming a vector that does not parse.
fn textual_id(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("id:"))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
        .filter(|v| !v.is_empty())
}

/// Loads one vector file: a header document, then one vector per document.
pub fn load_file(file: &Path, text: &str) -> Vec<Loaded> {
    let docs = yaml::documents(text);
    let fallback_area = file
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    let Some((head, rest)) = docs.split_first() else {
        return vec![Loaded {
            file: file.to_path_buf(),
            line: 1,
            id: file.display().to_string(),
            area: fallback_area,
            vector: Err(Located::new(
                file,
                1,
                1,
                "empty vector file: it needs a header document",
            )),
        }];
    };
    let header = yaml::parse::<Header>(file, head).and_then(|h| {
        if h.format == FORMAT_VERSION {
            Ok(h)
        } else {
            Err(Located::new(
                file,
                head.first_line,
                1,
                format!(
                    "format {} is not supported by this runner (it reads format {FORMAT_VERSION})",
                    h.format
                ),
            ))
        }
    });
    let header = match header {
        Ok(h) => h,
        Err(e) => {
            // Without a valid header no vector of the file can run; report each by name.
            return rest
                .iter()
                .map(|d| Loaded {
                    file: file.to_path_buf(),
                    line: d.first_line,
                    id: textual_id(d.text)
                        .unwrap_or_else(|| format!("{}:{}", file.display(), d.first_line)),
                    area: fallback_area.clone(),
                    vector: Err(e.clone()),
                })
                .chain(rest.is_empty().then(|| Loaded {
                    file: file.to_path_buf(),
                    line: 1,
                    id: file.display().to_string(),
                    area: fallback_area.clone(),
                    vector: Err(e.clone()),
                }))
                .collect();
        }
    };
    rest.iter()
        .map(|doc| {
            let parsed = yaml::parse::<Vector>(file, doc).and_then(|mut v| {
                // Step positions become file lines, so every later message can cite them.
                for s in &mut v.steps {
                    s.line += doc.first_line - 1;
                }
                apply_defaults(&mut v, &header);
                check(file, doc.first_line, &v)?;
                Ok(v)
            });
            Loaded {
                file: file.to_path_buf(),
                line: doc.first_line,
                id: match &parsed {
                    Ok(v) => v.id.clone(),
                    Err(_) => textual_id(doc.text)
                        .unwrap_or_else(|| format!("{}:{}", file.display(), doc.first_line)),
                },
                area: header.area.clone(),
                vector: parsed,
            }
        })
        .collect()
}

fn apply_defaults(v: &mut Vector, h: &Header) {
    if v.platform.is_none() {
        v.platform = h.defaults.platform.clone();
    }
    if v.requires.is_none() {
        v.requires = h.defaults.requires.clone();
    }
    if v.since.is_none() {
        v.since = h.defaults.since.clone();
    }
}

/// The single action of a step, by its vector spelling.
pub fn action_name(step: &Step) -> Result<&'static str, String> {
    let present: Vec<&'static str> = [
        ("dma_iova_try_alloc", step.dma_iova_try_alloc.is_some()),
        ("dma_iova_link", step.dma_iova_link.is_some()),
        ("dma_iova_sync", step.dma_iova_sync.is_some()),
        ("dma_iova_unlink", step.dma_iova_unlink.is_some()),
        ("dma_iova_destroy", step.dma_iova_destroy.is_some()),
        ("dma_iova_free", step.dma_iova_free.is_some()),
        ("dma_use_iova", step.dma_use_iova.is_some()),
        ("dma_iova_size", step.dma_iova_size.is_some()),
        ("device.read", step.device_read.is_some()),
        ("device.write", step.device_write.is_some()),
        ("cpu.read", step.cpu_read.is_some()),
        ("cpu.write", step.cpu_write.is_some()),
        ("cpu.speculate", step.cpu_speculate.is_some()),
        ("state.set", step.state_set.is_some()),
        ("dma_map_phys", step.dma_map_phys.is_some()),
        ("dma_unmap_phys", step.dma_unmap_phys.is_some()),
        ("dma_need_unmap", step.dma_need_unmap.is_some()),
        ("dma_need_sync", step.dma_need_sync.is_some()),
        ("dma_map_page_attrs", step.dma_map_page_attrs.is_some()),
        ("dma_unmap_page_attrs", step.dma_unmap_page_attrs.is_some()),
        ("dma_map_resource", step.dma_map_resource.is_some()),
        ("dma_unmap_resource", step.dma_unmap_resource.is_some()),
        (
            "dma_sync_single_for_cpu",
            step.dma_sync_single_for_cpu.is_some(),
        ),
        (
            "dma_sync_single_for_device",
            step.dma_sync_single_for_device.is_some(),
        ),
        ("time.advance", step.time_advance.is_some()),
        ("pci_p2pdma_state", step.pci_p2pdma_state.is_some()),
        ("dma_map_sg", step.dma_map_sg.is_some()),
        ("dma_unmap_sg", step.dma_unmap_sg.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, p)| p.then_some(n))
    .collect();
    match present.as_slice() {
        [one] => Ok(one),
        [] => Err("a step needs exactly one action (dma_iova_*, device.*, cpu.*)".into()),
        many => Err(format!(
            "a step has exactly one action, this one has {}",
            many.join(", ")
        )),
    }
}

/// Checks a parsed vector beyond what its types enforce: shapes the schema cannot express.
fn check(file: &Path, first_line: u64, v: &Vector) -> Result<(), Located> {
    // Step lines are file lines already (`load_file`).
    let at = |line: u64, column: u64, msg: String| {
        Located::new(file, line, column, format!("vector `{}`: {msg}", v.id))
    };
    let top = |msg: String| Located::new(file, first_line, 1, format!("vector `{}`: {msg}", v.id));
    if v.id.is_empty()
        || !v
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(top(format!(
            "id `{}` must be lower-case letters, digits and `-`",
            v.id
        )));
    }
    if v.rules.is_empty() {
        return Err(top("`rules` must name at least one spec rule".into()));
    }
    if v.why.trim().is_empty() {
        return Err(top("`why` must say where the expectations come from".into()));
    }
    if v.platform.is_none() {
        return Err(top(
            "no platform: set `platform` or the file's `defaults.platform`".into(),
        ));
    }
    if v.steps.is_empty() {
        return Err(top("a vector needs at least one step".into()));
    }
    for (name, b) in &v.buffers {
        // A buffer's initial contents are written as one access (spec/INTERPRETING.md §
        // "Buffers"); a larger `fill` would leave the rest zero and fail a correct door.
        if b.fill.is_some() && b.size > crate::exec::MAX_ACCESS {
            return Err(top(format!(
                "buffer `{name}`: a `fill` covers at most {:#x} bytes (16 MiB); this buffer has {:#x}",
                crate::exec::MAX_ACCESS,
                b.size
            )));
        }
        if b.at.is_some_and(|at| at.checked_add(b.size).is_none()) {
            return Err(top(format!(
                "buffer `{name}`: `at` + `size` ends past the 64-bit physical address space"
            )));
        }
    }
    let mut executed: u64 = 0;
    for step in &v.steps {
        let s = &step.value;
        let err = |m: String| at(step.line, step.column, m);
        action_name(s).map_err(&err)?;
        if let Some(n) = s.repeat {
            if !(1..=MAX_REPEAT).contains(&n) {
                return Err(err(format!(
                    "`repeat: {n}`: a step repeats 1 to {MAX_REPEAT} times"
                )));
            }
        }
        executed += s.repeat.unwrap_or(1);
        if executed > MAX_EXECUTED_STEPS {
            return Err(err(format!(
                "the vector runs more than {MAX_EXECUTED_STEPS} steps, repetitions counted"
            )));
        }
        // `buf` and `granule` start expressions of their own (spec/INTERPRETING.md).
        let names = [
            s.dma_iova_try_alloc.as_ref().map(|a| &a.state),
            s.dma_iova_link.as_ref().map(|a| &a.state),
            s.state_set.as_ref().map(|a| &a.state),
            s.dma_map_phys.as_ref().map(|a| &a.handle),
            s.dma_map_page_attrs.as_ref().map(|a| &a.handle),
            s.dma_map_resource.as_ref().map(|a| &a.handle),
            s.dma_map_sg.as_ref().map(|a| &a.list),
        ];
        for name in names.into_iter().flatten() {
            if name == "buf" || name == "granule" || name.is_empty() || name.contains('.') {
                return Err(err(format!("`{name}` cannot name a state or handle")));
            }
        }
        let attrs: Vec<&Vec<String>> = [
            s.dma_map_phys.as_ref().map(|a| &a.attrs),
            s.dma_unmap_phys.as_ref().map(|a| &a.attrs),
            s.dma_map_page_attrs.as_ref().map(|a| &a.attrs),
            s.dma_unmap_page_attrs.as_ref().map(|a| &a.attrs),
            s.dma_map_resource.as_ref().map(|a| &a.attrs),
            s.dma_unmap_resource.as_ref().map(|a| &a.attrs),
            s.dma_iova_link.as_ref().map(|a| &a.attrs),
            s.dma_iova_unlink.as_ref().map(|a| &a.attrs),
            s.dma_iova_destroy.as_ref().map(|a| &a.attrs),
            s.dma_map_sg.as_ref().map(|a| &a.attrs),
            s.dma_unmap_sg.as_ref().map(|a| &a.attrs),
        ]
        .into_iter()
        .flatten()
        .collect();
        for name in attrs.into_iter().flatten() {
            if Attrs::from_name(name).is_none() {
                return Err(err(format!("unknown DMA attribute `{name}`")));
            }
        }
        if s.expect.as_ref().is_some_and(|e| e.events.is_some()) {
            return Err(err(
                "`events` belong in the `linux` block: the semantic profile does not fix Linux's event order".into(),
            ));
        }
        for expect in [&s.expect, &s.linux].into_iter().flatten() {
            for ev in expect.events.iter().flatten() {
                if !EVENT_KINDS.contains(&ev.kind.as_str()) {
                    return Err(err(format!("unknown event kind `{}`", ev.kind)));
                }
                if ev.kind == "warn" {
                    if let Some(crate::model::Expected::Exact(crate::model::Atom::Str(code))) =
                        ev.fields.get("code")
                    {
                        if WarnCode::from_name(code).is_none() {
                            return Err(err(format!("unknown WARN code `{code}`")));
                        }
                    }
                }
            }
            let hazards = match &expect.hazards {
                Some(crate::model::HazardSet::Exactly(v)) => v.as_slice(),
                _ => &[],
            };
            for h in hazards {
                if !crate::HAZARD_NAMES.contains(&h.as_str()) {
                    return Err(err(format!("unknown hazard `{h}`")));
                }
            }
        }
    }
    crate::scope::check(v).map_err(|(place, m)| match place {
        Some((line, column)) => at(line, column, m),
        None => top(m),
    })
}
