//! `dmaconf`: run the conformance vectors against an implementation, lint the suite, print the
//! vector schema.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dmaconf_engine::report::{self, Filter};
use dmaconf_engine::{lint, load_suite, model, Door, Profile};

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
    Run {
        /// The implementation under test: `reference`, `c:PATH.so` (a C ABI plug-in,
        /// ffi/c/include/dmaconf.h, isolated in a child process), `wire:COMMAND` (any program
        /// speaking spec/9-wire.md) or `kernel:qemu`.
        #[arg(long = "impl", default_value = "reference")]
        implementation: String,
        /// With `--impl c:PATH.so`: load the plug-in into this process (fast, debugger-friendly;
        /// a crash in the plug-in ends the run).
        #[arg(long)]
        in_process: bool,
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
        /// Leave each vector's trace out of JSON output.
        #[arg(long)]
        no_trace: bool,
        /// With `--impl kernel:qemu`: write the agreement table (markdown) to this file, with
        /// the explanations kept in the same path with the extension `.explained`.
        #[arg(long)]
        agreement: Option<PathBuf>,
        /// Time limit per vector and preset for an implementation behind the wire
        /// (`--impl wire:...`): `10s`, `500ms`, `2m`. A vector that runs longer is `timeout`.
        #[arg(long, default_value = "10s", value_parser = dmaconf::parse_duration)]
        timeout: std::time::Duration,
        /// Fault injection (iommufd's fail_nth): run each selected vector once per fallible
        /// platform call it makes (iommu_map, iotlb_sync_map, bounce_alloc), failing the n-th,
        /// and judge the unwinding: an error returned, no page-table entry, bounce slot or
        /// stale IOTLB entry left behind. In-process implementations only.
        #[arg(long)]
        fail_nth: bool,
    },
    /// Serve an implementation over stdin/stdout with the wire protocol (spec/9-wire.md), for
    /// `dmaconf run --impl wire:COMMAND` or any runner speaking the wire. With `c:PATH.so` this
    /// is the plug-in host of `dmaconf run --impl c:PATH.so`.
    Serve {
        /// The implementation to serve: `reference` or `c:PATH.so`.
        #[arg(long = "impl", default_value = "reference")]
        implementation: String,
    },
    /// Check the suite itself: rule coverage, ids, every vector loads, schema currency; count the
    /// vectors that say nowhere where their values come from (`derived:`).
    Lint {
        /// List the ids of the vectors without a `derived:` block.
        #[arg(long)]
        underived: bool,
    },
    /// Print the JSON Schema of vector documents (committed as spec/vector.schema.json).
    Schema,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Semantic,
    Linux,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli.root.unwrap_or_else(dmaconf::find_root);
    match cli.command {
        Command::Schema => {
            match dmaconf::write_stdout(|w| w.write_all(model::schema_json().as_bytes())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Serve { implementation } => match dmaconf::serve_stdio(&implementation) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
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
            if r.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Run {
            implementation,
            profile,
            filter,
            rule,
            area,
            format,
            no_trace,
            agreement,
            timeout,
            in_process,
            fail_nth,
        } => {
            if fail_nth {
                let f = Filter {
                    ids: filter,
                    rules: rule,
                    areas: area,
                };
                return dmaconf::fail_nth(
                    &root,
                    &implementation,
                    &f,
                    matches!(format, Format::Json),
                );
            }
            if in_process && !implementation.starts_with("c:") {
                eprintln!("error: --in-process applies to --impl c:PATH.so");
                return ExitCode::from(2);
            }
            let kernel = (implementation == "kernel:qemu").then(|| dmaconf::kernel_door(&root));
            if agreement.is_some() && kernel.is_none() {
                eprintln!("error: --agreement needs --impl kernel:qemu");
                return ExitCode::from(2);
            }
            let other: Option<Box<dyn Door>> = match &kernel {
                Some(_) => None,
                None => {
                    match dmaconf::door(
                        &implementation,
                        &root,
                        dmaconf::DoorOptions {
                            timeout,
                            in_process,
                        },
                    ) {
                        Ok(i) => Some(i),
                        Err(e) => {
                            eprintln!("error: {e}");
                            return ExitCode::from(2);
                        }
                    }
                }
            };
            let door: &dyn Door = match (&kernel, &other) {
                (Some(k), _) => k,
                (None, Some(o)) => o.as_ref(),
                (None, None) => return ExitCode::from(2),
            };
            let profiles: Vec<Profile> = if profile.is_empty() {
                Profile::ALL.to_vec()
            } else {
                profile
                    .iter()
                    .map(|p| match p {
                        ProfileArg::Semantic => Profile::Semantic,
                        ProfileArg::Linux => Profile::Linux,
                    })
                    .collect()
            };
            let suite = load_suite(&root.join("vectors"));
            let f = Filter {
                ids: filter,
                rules: rule,
                areas: area,
            };
            let mut report = match report::run_suite(&suite, door, &profiles, &f, |_| {}) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // An empty selection is an error, not a green run (nextest does the same): a typo in
            // `--filter` must not pass CI by running nothing.
            if report.vectors.is_empty() {
                eprintln!("error: no vector matches {}", dmaconf::selection(&f));
                return ExitCode::from(2);
            }
            if let (Some(path), Some(k)) = (&agreement, &kernel) {
                let explained = std::fs::read_to_string(path.with_extension("explained"))
                    .map(|t| dmaconf_kernel::table::explanations(&t))
                    .unwrap_or_default();
                let text = dmaconf_kernel::table::render(
                    &report,
                    &|id| k.notes(id),
                    &explained,
                    &k.timing(),
                );
                if let Err(e) = std::fs::write(path, text) {
                    eprintln!("error: {}: {e}", path.display());
                    return ExitCode::from(2);
                }
                eprintln!("agreement table written to {}", path.display());
            }
            let written = match format {
                Format::Human => {
                    dmaconf::write_stdout(|w| w.write_all(report::human(&report).as_bytes()))
                }
                Format::Json => {
                    if no_trace {
                        for v in &mut report.vectors {
                            v.trace = None;
                        }
                    }
                    dmaconf::write_stdout(|w| {
                        serde_json::to_writer_pretty(&mut *w, &report)?;
                        writeln!(w)
                    })
                }
            };
            if let Err(e) = written {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
