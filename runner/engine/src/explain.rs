//! `dmaconf explain ID`: what a reviewer reads first about one vector. Its `why:`, the text of
//! every rule it cites (from `spec/`), its platform (the preset's own `why:` and facts, and the
//! vector's overrides), then its steps as written, each with the expectations each profile
//! checks. Everything is quoted from the files, so the explanation cannot drift from them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::lint::rule_heading;
use crate::load::Suite;
use crate::yaml;

/// A rule as the spec states it.
#[derive(Clone, Debug)]
pub struct RuleText {
    /// `spec/FILE.md:LINE` of the heading.
    pub at: String,
    /// The heading after the id.
    pub title: String,
    /// The paragraphs up to the next heading.
    pub text: String,
}

/// Every rule of `spec/*.md` with its text.
pub fn rule_texts(spec: &Path) -> BTreeMap<String, RuleText> {
    let mut out = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(spec)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let Some(id) = rule_heading(line) else {
                continue;
            };
            let title = line.split_once("— ").map(|(_, t)| t).unwrap_or("");
            let body: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| !l.starts_with('#'))
                .copied()
                .collect();
            let shown = spec
                .file_name()
                .map(|s| Path::new(s).join(f.file_name().unwrap_or_default()))
                .unwrap_or_else(|| f.clone());
            out.insert(
                id,
                RuleText {
                    at: format!("{}:{}", shown.display(), n + 1),
                    title: title.to_string(),
                    text: body.join("\n").trim().to_string(),
                },
            );
        }
    }
    out
}

/// The top-level blocks of a YAML document (`key:` at column 1 and the lines under it), with
/// the line each starts on.
fn blocks(text: &str, first_line: u64) -> Vec<(String, u64, String)> {
    let mut out: Vec<(String, u64, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let top = !line.starts_with([' ', '#', '-']) && line.contains(':');
        if top {
            let key = line.split(':').next().unwrap_or("").to_string();
            out.push((key, first_line + i as u64, String::new()));
        }
        if let Some(last) = out.last_mut() {
            last.2.push_str(line);
            last.2.push('\n');
        }
    }
    out
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim().is_empty() {
                "\n".to_string()
            } else {
                format!("{by}{l}\n")
            }
        })
        .collect()
}

/// A spec paragraph's items: each list entry (`* `, `- `) and each `Linux:` / `Profiles:` line
/// stays on its own line; running text is one item.
fn items(para: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in para.lines() {
        let t = line.trim_start();
        let starts = t.starts_with("* ")
            || t.starts_with("- ")
            || t.split_once(": ").is_some_and(|(w, _)| {
                !w.is_empty() && !w.contains(' ') && w.starts_with(|c: char| c.is_ascii_uppercase())
            });
        match out.last_mut() {
            Some(last) if !starts => {
                last.push(' ');
                last.push_str(t);
            }
            _ => out.push(t.to_string()),
        }
    }
    out
}

/// Wraps a paragraph at 96 columns.
fn wrap(text: &str, by: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && by.len() + line.len() + 1 + word.len() > 96 {
            out.push_str(&format!("{by}{line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{by}{line}\n"));
    }
    out
}

/// The explanation of vector `id`; an unknown id is an error listing ids that contain it.
pub fn explain(root: &Path, suite: &Suite, id: &str) -> Result<String, String> {
    let Some(loaded) = suite.vectors.iter().find(|l| l.id == id) else {
        let near: Vec<&str> = suite
            .vectors
            .iter()
            .map(|l| l.id.as_str())
            .filter(|v| v.contains(id) || id.contains(*v))
            .take(8)
            .collect();
        return Err(if near.is_empty() {
            format!("no vector `{id}`")
        } else {
            format!("no vector `{id}`; did you mean: {}", near.join(", "))
        });
    };
    let text = std::fs::read_to_string(&loaded.file)
        .map_err(|e| format!("{}: {e}", loaded.file.display()))?;
    let docs = yaml::documents(&text);
    let doc = docs
        .iter()
        .find(|d| d.first_line == loaded.line)
        .ok_or_else(|| {
            format!(
                "{}:{}: document not found",
                loaded.file.display(),
                loaded.line
            )
        })?;
    let header = docs.first().filter(|d| d.first_line != loaded.line);
    let mine = blocks(doc.text, doc.first_line);
    let block = |k: &str| mine.iter().find(|(key, _, _)| key == k);
    let shown_file = loaded
        .file
        .strip_prefix(root)
        .unwrap_or(&loaded.file)
        .display()
        .to_string();

    let mut out = format!(
        "{id}  ({shown_file}:{}, area {})\n\n",
        loaded.line, loaded.area
    );
    let v = match &loaded.vector {
        Ok(v) => v,
        Err(e) => {
            out.push_str(&format!("This vector does not load: {e}\n\n"));
            out.push_str(&indent(doc.text, "  "));
            return Ok(out);
        }
    };

    out.push_str("WHY\n");
    out.push_str(&wrap(&v.why, "  "));
    if let Some(m) = &v.misuse {
        out.push_str(&format!(
            "  The caller breaks a rule on purpose: misuse class `{m}`.\n"
        ));
    }

    out.push_str("\nRULES\n");
    let rules = rule_texts(&root.join("spec"));
    for r in &v.rules {
        match rules.get(r) {
            Some(t) => {
                out.push_str(&format!("  {r} — {}  ({})\n", t.title, t.at));
                for para in t.text.split("\n\n") {
                    for item in items(para) {
                        out.push_str(&wrap(&item, "      "));
                    }
                    out.push('\n');
                }
            }
            None => out.push_str(&format!(
                "  {r}: not defined in spec/ (lint reports it)\n\n"
            )),
        }
    }

    out.push_str("PLATFORM\n");
    let own = block("platform");
    let from_header = header.and_then(|h| {
        blocks(h.text, h.first_line)
            .into_iter()
            .find(|(k, _, _)| k == "defaults")
    });
    match (own, &from_header) {
        (Some((_, line, text)), _) => {
            out.push_str(&format!("  as written ({shown_file}:{line}):\n"));
            out.push_str(&indent(text, "    "));
        }
        (None, Some((_, line, text))) => {
            out.push_str(&format!("  the file's defaults ({shown_file}:{line}):\n"));
            out.push_str(&indent(text, "    "));
        }
        (None, None) => out.push_str("  none given\n"),
    }
    for choice in v.platform.iter().flat_map(|p| &p.0) {
        let Some((path, preset)) = suite.presets.by_id.get(&choice.preset) else {
            out.push_str(&format!("  preset `{}`: unknown\n", choice.preset));
            continue;
        };
        let path = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        out.push_str(&format!("  preset {}  ({path})\n", choice.preset));
        out.push_str(&wrap(&preset.why, "      "));
        if let Ok(p) = std::fs::read_to_string(root.join(&path)) {
            let facts: String = blocks(&p, 1)
                .into_iter()
                .filter(|(k, _, _)| k != "id" && k != "why")
                .map(|(_, _, t)| t)
                .collect();
            out.push_str(&indent(&facts, "      "));
        }
        if choice
            != &(crate::model::PlatformChoice {
                preset: choice.preset.clone(),
                ..Default::default()
            })
        {
            out.push_str("      (the overrides above replace these facts)\n");
        }
    }
    let requires = v.requires.clone().unwrap_or_default();
    out.push_str(&format!(
        "  requires: {}; since: {}{}\n",
        if requires.is_empty() {
            "nothing".to_string()
        } else {
            requires.join(", ")
        },
        v.since.as_deref().unwrap_or("-"),
        v.until
            .as_deref()
            .map(|u| format!(", until: {u}"))
            .unwrap_or_default()
    ));

    if let Some((_, _, t)) = block("buffers") {
        out.push_str("\nBUFFERS\n");
        out.push_str(&indent(t, "  "));
    }

    out.push_str(
        "\nSTEPS, with the expectations each profile checks\n  \
         semantic checks `expect:`; linux checks `expect:` with `linux:` on top, and an API call\n  \
         with no `events:` under linux must log none. Unlisted hazards and faults must not happen.\n",
    );
    let lines: Vec<&str> = doc.text.lines().collect();
    let end_of_steps = block("steps")
        .map(|(_, l, t)| l + t.lines().count() as u64)
        .unwrap_or(doc.first_line + lines.len() as u64);
    for (i, s) in v.steps.iter().enumerate() {
        // Step lines are file lines (the loader shifts them, so messages can cite them).
        let from = s.line;
        let to = v.steps.get(i + 1).map(|n| n.line).unwrap_or(end_of_steps);
        let body: Vec<&str> = (from..to)
            .filter_map(|l| lines.get((l - doc.first_line) as usize).copied())
            .collect();
        let body = body.join("\n");
        let body = body.trim_end();
        let body = body.trim_start().trim_start_matches("- ");
        out.push_str(&format!("  step {}  ({shown_file}:{from})\n", i + 1));
        out.push_str(&indent(&dedent(body), "    "));
    }
    match block("end") {
        Some((_, line, t)) => {
            out.push_str(&format!("\nEND STATE  ({shown_file}:{line})\n"));
            out.push_str(&indent(t, "  "));
        }
        None => out.push_str(
            "\nEND STATE\n  by default: no live mapping, no live bounce slot, no reservation left\n",
        ),
    }
    Ok(out)
}

/// Removes the indentation the step's continuation lines share.
fn dedent(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let rest: Vec<&str> = lines.collect();
    let cut = rest
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    std::iter::once(first.to_string())
        .chain(rest.iter().map(|l| l.get(cut..).unwrap_or("").to_string()))
        .collect::<Vec<_>>()
        .join("\n")
}
