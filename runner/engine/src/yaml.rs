//! The one module that knows the YAML library (serde-saphyr). Everything else sees typed
//! values or a [`Located`] error.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A problem in an input file, with its position (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct Located {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl Located {
    pub fn new(file: &Path, line: u64, column: u64, message: impl Into<String>) -> Located {
        Located {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// One YAML document of a multi-document file: its text and the line it starts on.
#[derive(Clone, Debug)]
pub struct Document<'a> {
    pub first_line: u64,
    pub text: &'a str,
}

/// Splits a file into documents at lines that are exactly `---` (optionally followed by a
/// comment). Each document is parsed on its own so that one malformed vector does not hide the
/// others (`spec/INTERPRETING.md` § "Vector files").
pub fn documents(text: &str) -> Vec<Document<'_>> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1u64;
    let mut offset = 0usize;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        let is_separator = trimmed == "---" || trimmed.starts_with("--- #");
        if is_separator {
            out.push(Document {
                first_line: start_line,
                text: &text[start..offset],
            });
            start = offset + line.len();
            start_line = index as u64 + 2;
        }
        offset += line.len();
    }
    out.push(Document {
        first_line: start_line,
        text: &text[start..],
    });
    // A document holding only comments and blank lines is not a document.
    out.retain(|d| {
        d.text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    out
}

fn options() -> serde_saphyr::Options {
    // Budgets stay at the library's defaults (alias bombs, deep nesting); duplicate keys are
    // errors by default, which catches copy-paste mistakes in vectors.
    let mut o = serde_saphyr::Options::default();
    o.with_snippet = false;
    // YAML 1.2 booleans only (`true`/`false`): a state named `n` or `y` stays a string, the
    // same whether the document is read into the vector types or into JSON for the schema.
    o.strict_booleans = true;
    o
}

/// Numbers in the vector format are decimal or `0x` hexadecimal (`spec/INTERPRETING.md`), but
/// YAML 1.2 also reads `0o777` and `0b101` as integers, which the deserializer then cannot tell
/// from `511` and `5`. Plain scalars spelled that way are refused at their line and column.
fn refuse_other_radixes(file: &Path, doc: &Document<'_>) -> Result<(), Located> {
    use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};
    let suspect = ["0o", "0O", "0b", "0B"]
        .iter()
        .any(|p| doc.text.contains(p));
    if !suspect {
        return Ok(());
    }
    for item in Parser::new_from_str(doc.text) {
        // A syntax error is the deserializer's to report, with its own wording.
        let Ok((Event::Scalar(value, ScalarStyle::Plain, _, _), span)) = item else {
            continue;
        };
        let digits = value.trim_start_matches(['+', '-']);
        let radix = ["0o", "0O", "0b", "0B"]
            .iter()
            .find_map(|p| digits.strip_prefix(p));
        if radix.is_some_and(|r| {
            !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }) {
            return Err(Located::new(
                file,
                doc.first_line + span.start.line() as u64 - 1,
                span.start.col() as u64 + 1,
                format!("`{value}`: numbers are decimal or `0x` hexadecimal"),
            ));
        }
    }
    Ok(())
}

/// Parses one document into `T`, mapping any error to the file's own line numbers.
pub fn parse<T: DeserializeOwned>(file: &Path, doc: &Document<'_>) -> Result<T, Located> {
    refuse_other_radixes(file, doc)?;
    serde_saphyr::from_str_with_options(doc.text, options()).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let message = in_our_words(&e, doc, line, column);
        Located::new(file, doc.first_line + line - 1, column, message)
    })
}

/// The plain scalar starting at (line, column) of a document, 1-based.
fn scalar_at<'a>(doc: &Document<'a>, line: u64, column: u64) -> Option<&'a str> {
    let text = doc
        .text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let mut rest = text.get(usize::try_from(column).ok()?.checked_sub(1)?..)?;
    // The library may point at the key (`addr: 1e30`): the value follows its colon.
    let key_end = rest.find(|c: char| c == ',' || c == '}' || c.is_whitespace());
    if let Some(k) = key_end.filter(|k| rest[..*k].ends_with(':')) {
        rest = rest[k..].trim_start();
    }
    let end = rest
        .find(|c: char| c == ',' || c == '}' || c == ']' || c == '#' || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|s| !s.is_empty())
}

/// The library's message in the format's words: no hint about the library's own options, no
/// Rust debug dump, a too-large number called a number (the library reads it as a float).
fn in_our_words(e: &serde_saphyr::Error, doc: &Document<'_>, line: u64, column: u64) -> String {
    use serde_saphyr::budget::BudgetBreach;
    use serde_saphyr::Error;
    let mut e = e;
    while let Error::WithSnippet { error, .. } = e {
        e = error;
    }
    match e {
        Error::DuplicateMappingKey { key: Some(k), .. } => {
            return format!("duplicate key `{k}`: a key appears once in a mapping")
        }
        Error::DuplicateMappingKey { key: None, .. } => {
            return "duplicate key: a key appears once in a mapping".into()
        }
        Error::MultipleDocuments { .. } => {
            return "a second YAML document starts here: this file holds one document (vector files separate theirs with a line `---`)".into()
        }
        Error::Budget { breach, .. } => {
            let what = match breach {
                BudgetBreach::Nodes { .. } => {
                    "250,000 YAML values (keys, scalars, lists, maps): about 19,000 steps; write a long workload with `repeat` (spec/INTERPRETING.md § Repetition)"
                }
                BudgetBreach::Events { .. } => "1,000,000 YAML parser events",
                BudgetBreach::Depth { .. } => "64 levels of nesting",
                BudgetBreach::Aliases { .. } | BudgetBreach::Anchors { .. } => {
                    "50,000 anchors or aliases"
                }
                BudgetBreach::Documents { .. } => "1,024 documents",
                BudgetBreach::ScalarBytes { .. } => "64 MiB of text",
                _ => "what the loader reads (spec/INTERPRETING.md § Limits)",
            };
            return format!("the document grows past the loader's limit of {what} at this line");
        }
        _ => {}
    }
    let text = e.to_string();
    // The library appends " at line L, column C"; we print our own position instead.
    let text = match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    };
    if text.starts_with("invalid type: floating point") {
        if let Some(raw) = scalar_at(doc, line, column) {
            let digits = raw.trim_start_matches(['+', '-']).replace('_', "");
            if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                return format!("`{raw}` is too large a number: values are 64-bit (at most 18446744073709551615 or 0xFFFF_FFFF_FFFF_FFFF)");
            }
            return format!(
                "`{raw}` is not a whole number: numbers are decimal or `0x` hexadecimal integers"
            );
        }
    }
    text
}

/// Parses a single-document file (presets, `spec/untested.yaml`).
pub fn parse_file<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, Located> {
    parse(
        file,
        &Document {
            first_line: 1,
            text,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_and_keeps_line_numbers() {
        let text = "format: 1\n---\nid: a\n--- # second\n\nid: b\n";
        let docs = documents(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[1].first_line, 3);
        assert_eq!(docs[2].first_line, 5);
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Id {
            id: u64,
        }
        let err = parse::<Id>(Path::new("f.yaml"), &docs[2]).err().unwrap();
        assert_eq!((err.line, err.column), (6, 5));
        assert!(err.to_string().starts_with("f.yaml:6:5: "), "{err}");
    }

    #[test]
    fn comment_only_documents_are_dropped() {
        assert_eq!(documents("# just a comment\n---\n# another\n").len(), 0);
    }
}

/// A value with the position it was read from (line relative to its document; add the
/// document's `first_line - 1`). Lets checks made after parsing still name file:line:column.
#[derive(Clone, Debug)]
pub struct At<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for At<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<At<T>, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(At {
            value: spanned.value,
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        })
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for At<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// A document as a JSON value (for JSON Schema validation).
pub fn to_json(file: &Path, doc: &Document<'_>) -> Result<serde_json::Value, Located> {
    parse::<serde_json::Value>(file, doc)
}

/// Writes a value as YAML (the expectations file `--emit-expectations` starts a user with).
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_saphyr::to_string(value).map_err(|e| e.to_string())
}
