//! Property tests over hostile input (issue 15): the loader and the expression language never
//! panic, and what they refuse is placed inside the file. The corpus is the suite's own vector
//! files, cut and spliced at random. CI runs proptest's default number of cases; a longer run:
//! `PROPTEST_CASES=1000000 cargo test --release -p dmaconf-engine --test fuzz`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dmaconf_engine::expr::{self, Symbols};
use dmaconf_engine::load;
use dmaconf_engine::model::{Atom, Expr};
use proptest::prelude::*;

fn corpus() -> &'static Vec<(PathBuf, String)> {
    static CORPUS: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors");
        load::vector_files(&root)
            .0
            .into_iter()
            .map(|f| {
                let text = std::fs::read_to_string(&f).unwrap();
                (f, text)
            })
            .collect()
    })
}

/// Pieces of the format that make a splice likely to reach deep into the loader.
const SNIPPETS: &[&str] = &[
    "---\n", "repeat: 99999999\n", "  - dma_iova_link: {state: s0, phys: buf.a + i * 0x1000, offset: 0, size: 0x1000, dir: to_device}\n",
    "0o777", "0b1", "18446744073709551616", "-1", "buf.zz.end", "s9.addr", "*", "&a [*a, *a]",
    "{", "}", "[", "]", ": ", "\t", "\u{feff}", "\"", "'", "#", "!!binary", "<<: *x", "~",
    "id: dup\n", "rules: [NOPE-99]\n", "platform: {preset: x86-vtd-q35, dma_mask: 0x0}\n",
    "    expect: {data: {buf: a, at: 0xFFFFFFFFFFFFFFFF}}\n",
];

/// One edit of a text: cut a range, or splice a snippet in.
fn edit(text: &str, at: usize, len: usize, snippet: Option<usize>) -> String {
    let mut cut = at.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut end = (cut + len).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let middle = snippet.map_or("", |s| SNIPPETS[s % SNIPPETS.len()]);
    format!("{}{middle}{}", &text[..cut], &text[end..])
}

struct Symbolic;

impl Symbols for Symbolic {
    fn buffer(&self, name: &str) -> Option<(u64, u64)> {
        (name == "a").then_some((u64::MAX - 0x10, 0x20))
    }
    fn state(&self, name: &str) -> Option<(u64, u64)> {
        (name == "s0").then_some((0xFFFF_F000, u64::MAX))
    }
    fn granule(&self) -> u64 {
        0x1000
    }
    fn pool(&self) -> Option<u64> {
        None
    }
    fn index(&self) -> Option<u64> {
        Some(u64::MAX)
    }
}

proptest! {
    /// Three edits of a suite file: the loader answers for every vector, without panicking,
    /// and every error it places lies inside the file.
    #[test]
    fn the_loader_never_panics_and_places_errors_in_the_file(
        which in any::<usize>(),
        edits in prop::collection::vec((any::<usize>(), 0usize..64, prop::option::of(any::<usize>())), 1..4),
    ) {
        let (file, text) = &corpus()[which % corpus().len()];
        let mut text = text.clone();
        for (at, len, snippet) in edits {
            let at = if text.is_empty() { 0 } else { at % text.len() };
            text = edit(&text, at, len, snippet);
        }
        let lines = text.lines().count() as u64 + 1;
        for l in load::load_file(file, &text) {
            if let Err(e) = &l.vector {
                prop_assert!(e.line >= 1 && e.line <= lines, "{e} (file of {lines} lines)");
                prop_assert!(e.column >= 1, "{e}");
            }
        }
    }

    /// Any string of the expression alphabet: evaluation never panics, and what evaluates has
    /// a shape `check_syntax` accepts.
    #[test]
    fn expressions_never_panic(text in "[a-z0-9_.+* -]{0,40}|(buf\\.a|s0\\.addr|i|granule|0x[0-9A-F]{1,17}|[0-9]{1,21})( ?[-+*] ?(buf\\.a(\\.end|\\.size)?|s0\\.(addr|size)|i|pool|0x[0-9A-F]{1,17}|[0-9]{1,21})){0,6}") {
        let value = expr::eval(&Expr(Atom::Str(text.clone())), &Symbolic);
        if value.is_ok() {
            prop_assert!(expr::check_syntax(&text).is_ok(), "{text}");
        }
    }
}
