//! `dmaconf`: run the conformance vectors against an implementation (with the outputs a CI
//! job keeps: baseline, results snapshot, JUnit, JSON lines, HTML), compare two results
//! snapshots, explain a vector, lint the suite, print the schemas.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dmaconf_engine::report::{self, json::LineWriter, Baseline, Filter};
use dmaconf_engine::{explain, lint, load_suite, model, Door, Profile};

#[derive(Parser)]
#[command(
    name = "dmaconf",
    version,
    about = "Conformance suite for the Linux two-step IOVA DMA API"
)]
struct Cli {
    /// Repository root holding spec/ and vectors/ (default: found from the current directory).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run vectors against an implementation and report.
    Run(Box<RunArgs>),
    /// Compare two results snapshots (`run --results`); exit 1 on a regression.
    Diff {
        /// The snapshot before (e.g. the committed one).
        old: PathBuf,
        /// The snapshot after.
        new: PathBuf,
    },
    /// Explain a vector: its why, the text of its rules, its platform, its steps with the
    /// expectations of each profile.
    Explain {
        /// The vector id.
        id: String,
    },
    /// Serve an implementation over stdin/stdout with the wire protocol (spec/9-wire.md), for
    /// `dmaconf run --impl wire:COMMAND` or any runner speaking the wire. With `c:PATH.so` this
    /// is the plug-in host of `dmaconf run --impl c:PATH.so`.
    Serve {
        /// The implementation to serve: `reference` or `c:PATH.so`.
        #[arg(long = "impl", default_value = "reference")]
        implementation: String,
    },
    /// Check the suite itself: rule coverage, ids, schema validity and currency; count the
    /// vectors that say nowhere where their values come from (`derived:`).
    Lint {
        /// List the ids of the vectors without a `derived:` block.
        #[arg(long)]
        underived: bool,
    },
    /// Print a JSON Schema: of vector documents (committed as spec/vector.schema.json), of the
    /// JSON report (spec/report.schema.json) or of one JSON-lines line
    /// (spec/report-line.schema.json) or of a results snapshot (spec/results.schema.json).
    Schema {
        #[arg(value_enum, default_value = "vector")]
        of: SchemaOf,
    },
}

#[derive(Args)]
struct RunArgs {
    /// The implementation under test: `reference`, `c:PATH.so` (a C ABI plug-in,
    /// ffi/c/include/dmaconf.h, isolated in a child process), `py:pkg.mod:Class` (a Python
    /// class, ffi/python, in a `dmaconf.serve` child), `wire:COMMAND` (any program speaking
    /// spec/9-wire.md) or `kernel:qemu`.
    #[arg(long = "impl", default_value = "reference")]
    implementation: String,
    /// With `--impl c:PATH.so`: load the plug-in into this process (fast, debugger-friendly;
    /// a crash in the plug-in ends the run).
    #[arg(long)]
    in_process: bool,
    /// Time limit per vector and preset for an implementation behind the wire
    /// (`--impl wire:...`, `c:` isolated): `10s`, `500ms`, `2m`. A vector that runs longer is
    /// `timeout`.
    #[arg(long, default_value = "10s", value_parser = dmaconf::parse_duration)]
    timeout: std::time::Duration,
    /// Do not run the misuse checker (spec/10-misuse-checker.md), nor judge `detected:`.
    #[arg(long)]
    no_check: bool,
    /// Fault injection (iommufd's fail_nth): run each selected vector once per fallible
    /// platform call it makes (iommu_map, iotlb_sync_map, bounce_alloc), failing the n-th,
    /// and judge the unwinding: an error returned, no page-table entry, bounce slot or
    /// stale IOTLB entry left behind. In-process implementations only.
    #[arg(long)]
    fail_nth: bool,
    /// Profile(s) to judge under (default: both).
    #[arg(long, value_enum)]
    profile: Vec<ProfileArg>,
    /// Only vectors whose id matches this glob (repeatable).
    #[arg(long)]
    filter: Vec<String>,
    /// Only vectors citing this rule (repeatable).
    #[arg(long)]
    rule: Vec<String>,
    /// Only vectors of this area (repeatable).
    #[arg(long)]
    area: Vec<String>,
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Leave each vector's trace out of JSON output and JSON lines.
    #[arg(long)]
    no_trace: bool,
    /// Expectations (baseline) file: listed failures that still fail are `waived`; a stale
    /// entry or an unknown id is an error naming the entry's file:line.
    #[arg(long, value_name = "FILE")]
    expectations: Option<PathBuf>,
    /// Write an expectations file for the current failures (reasons to fill in).
    #[arg(long, value_name = "FILE")]
    emit_expectations: Option<PathBuf>,
    /// Write the results snapshot (canonical JSON: class per profile and trace digest per
    /// vector, sorted by id) to commit and compare with `dmaconf diff`.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Put each vector's full trace in the results snapshot too.
    #[arg(long, requires = "results")]
    results_trace: bool,
    /// Stream one JSON object per vector as it finishes, each line flushed, then an end line
    /// (`-`: standard output, instead of the report); schema: spec/report-line.schema.json.
    #[arg(long, value_name = "FILE")]
    json_lines: Option<PathBuf>,
    /// Write JUnit XML: one testcase per vector and profile (classname = profile).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the static HTML report (DIR/index.html): rule x platform x profile matrix and a
    /// timeline per vector.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
    /// With `--impl kernel:qemu`: write the agreement table (markdown) to this file, with
    /// the explanations kept in the same path with the extension `.explained`.
    #[arg(long)]
    agreement: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Semantic,
    Linux,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaOf {
    Vector,
    Report,
    ReportLine,
    Results,
}

/// A failure of the command itself (bad arguments, unreadable files): exit 2.
type Fatal = String;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli.root.unwrap_or_else(dmaconf::find_root);
    let done = match cli.command {
        Command::Schema { of } => {
            print!(
                "{}",
                match of {
                    SchemaOf::Vector => model::schema_json(),
                    SchemaOf::Report => report::json::report_schema(),
                    SchemaOf::ReportLine => report::json::line_schema(),
                    SchemaOf::Results => report::json::results_schema(),
                }
            );
            Ok(true)
        }
        Command::Serve { implementation } => dmaconf::serve_stdio(&implementation).map(|()| true),
        Command::Lint { underived } => {
            let suite = load_suite(&root.join("vectors"));
            let r = lint::lint(&root, &suite);
            for e in &r.errors {
                eprintln!("error: {e}");
            }
            if underived {
                for id in &r.underived {
                    println!("underived: {id}");
                }
            }
            println!(
                "lint: {} files, {} vectors, {} rules ({} listed untested), {} problems; {} vectors without a derivation",
                r.files,
                r.vectors,
                r.rules,
                r.untested,
                r.errors.len(),
                r.underived.len()
            );
            Ok(r.errors.is_empty())
        }
        Command::Diff { old, new } => diff(&old, &new),
        Command::Explain { id } => {
            let suite = load_suite(&root.join("vectors"));
            explain::explain(&root, &suite, &id).map(|t| {
                print!("{t}");
                true
            })
        }
        Command::Run(a) if a.fail_nth => {
            let f = Filter {
                ids: a.filter,
                rules: a.rule,
                areas: a.area,
            };
            return dmaconf::fail_nth(
                &root,
                &a.implementation,
                &f,
                matches!(a.format, Format::Json),
            );
        }
        Command::Run(args) => run(&root, *args),
    };
    match done {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn diff(old: &Path, new: &Path) -> Result<bool, Fatal> {
    let (a, b) = (report::results::read(old)?, report::results::read(new)?);
    let d = report::diff::diff(&a, &b);
    print!("{}", d.text());
    Ok(d.regressions == 0)
}

fn write(path: &Path, text: &str, what: &str) -> Result<(), Fatal> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("{what} written to {}", path.display());
    Ok(())
}

fn run(root: &Path, a: RunArgs) -> Result<bool, Fatal> {
    if a.in_process && !a.implementation.starts_with("c:") {
        return Err("--in-process applies to --impl c:PATH.so".into());
    }
    let kernel = (a.implementation == "kernel:qemu").then(|| dmaconf::kernel_door(root));
    if a.agreement.is_some() && kernel.is_none() {
        return Err("--agreement needs --impl kernel:qemu".into());
    }
    let other: Option<Box<dyn Door>> = match &kernel {
        Some(_) => None,
        None => Some(dmaconf::door(
            &a.implementation,
            root,
            dmaconf::DoorOptions {
                timeout: a.timeout,
                in_process: a.in_process,
                check: !a.no_check,
            },
        )?),
    };
    let door: &dyn Door = match (&kernel, &other) {
        (Some(k), _) => k,
        (None, Some(o)) => o.as_ref(),
        (None, None) => return Err("no implementation".into()),
    };
    let profiles: Vec<Profile> = if a.profile.is_empty() {
        Profile::ALL.to_vec()
    } else {
        a.profile
            .iter()
            .map(|p| match p {
                ProfileArg::Semantic => Profile::Semantic,
                ProfileArg::Linux => Profile::Linux,
            })
            .collect()
    };
    let baseline = match a.expectations.as_deref().map(Baseline::load).transpose() {
        Ok(b) => b,
        Err(errors) => {
            let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            return Err(all.join("\nerror: "));
        }
    };
    let suite = load_suite(&root.join("vectors"));
    let f = Filter {
        ids: a.filter,
        rules: a.rule,
        areas: a.area,
    };
    let mut lines = match &a.json_lines {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(LineWriter::new(
            Box::new(std::io::stdout()) as Box<dyn Write>,
            !a.no_trace,
        )),
        Some(p) => Some(LineWriter::new(
            Box::new(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?)
                as Box<dyn Write>,
            !a.no_trace,
        )),
    };
    let mut stream_error = None;
    let mut report = report::run_suite_with(&suite, door, &profiles, &f, baseline.as_ref(), |v| {
        if let Some(w) = lines.as_mut() {
            if let Err(e) = w.vector(v) {
                stream_error.get_or_insert(e.to_string());
            }
        }
    })?;
    // An empty selection is an error, not a green run (nextest does the same): a typo in
    // `--filter` must not pass CI by running nothing.
    if report.vectors.is_empty() {
        return Err(format!("no vector matches {}", dmaconf::selection(&f)));
    }
    if let Some(w) = lines.as_mut() {
        if let Err(e) = w.end(&report) {
            stream_error.get_or_insert(e.to_string());
        }
    }
    if let (Some(path), Some(k)) = (&a.agreement, &kernel) {
        let explained = std::fs::read_to_string(path.with_extension("explained"))
            .map(|t| dmaconf_kernel::table::explanations(&t))
            .unwrap_or_default();
        let text =
            dmaconf_kernel::table::render(&report, &|id| k.notes(id), &explained, &k.timing());
        write(path, &text, "agreement table")?;
    }
    if let Some(path) = &a.emit_expectations {
        write(path, &report::expectations::emit(&report)?, "expectations")?;
    }
    if let Some(path) = &a.results {
        let text = report::results::render(&report::results::snapshot(&report, a.results_trace));
        write(path, &text, "results")?;
    }
    if let Some(path) = &a.junit {
        write(path, &report::junit::junit(&report), "JUnit XML")?;
    }
    if let Some(dir) = &a.html {
        let page =
            report::html::write(&report, dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        eprintln!("HTML report written to {}", page.display());
    }
    let to_stdout = a.json_lines.as_ref().is_some_and(|p| p.as_os_str() == "-");
    match a.format {
        _ if to_stdout => {}
        Format::Human => dmaconf::write_stdout(|w| w.write_all(report::human(&report).as_bytes()))?,
        Format::Json => {
            if a.no_trace {
                for v in &mut report.vectors {
                    v.trace = None;
                }
            }
            // Streamed, and a reader that went away (`| head`) is not a failure of the run.
            dmaconf::write_stdout(|w| {
                serde_json::to_writer_pretty(&mut *w, &report)?;
                writeln!(w)
            })?
        }
    }
    // A stream that broke off is reported once every other output is written.
    if let Some(e) = stream_error {
        return Err(format!("--json-lines: {e}"));
    }
    Ok(report.ok())
}
