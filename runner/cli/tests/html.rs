//! `--html DIR` loaded in a real headless Chromium (Debian's `chromium`, installed by
//! `scripts/install-chromium.sh` in CI): the page logs nothing to the console, every matrix cell
//! the results call for is in the rendered DOM, every run has its timeline and the failing step
//! is marked. The screenshot is kept at `target/html-report/screenshot.png`.

mod common;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{broken_free, dmaconf, repo, suite, text};
use serde_json::Value;

fn chromium() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    })
}

/// Loads a page headless; returns the rendered DOM and the console lines it logged.
fn render(browser: &Path, page: &Path, screenshot: Option<&Path>) -> (String, Vec<String>) {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let run = |extra: &[String]| {
        let o = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args([
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1600,1400",
            ])
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium runs");
        assert!(o.status.success(), "chromium: {}", text(&o));
        o
    };
    let dom = run(&["--dump-dom".to_string()]);
    // Our page has no script, so any console line (a script error, a blocked fetch) is a fault.
    let console: Vec<String> = String::from_utf8_lossy(&dom.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    if let Some(shot) = screenshot {
        run(&[format!("--screenshot={}", shot.display())]);
    }
    (String::from_utf8_lossy(&dom.stdout).into_owned(), console)
}

/// The checks a rendered report must pass, given the run's JSON report.
fn check(dom: &str, console: &[String], report: &Value) -> Result<(), String> {
    if !console.is_empty() {
        return Err(format!("console: {console:?}"));
    }
    let vectors = report["vectors"].as_array().ok_or("no vectors")?;
    let profiles = report["profiles"].as_array().ok_or("no profiles")?.len();
    let mut cells = BTreeSet::new();
    let mut runs = 0;
    for v in vectors {
        let mut presets: BTreeSet<String> = v["presets"]
            .as_array()
            .map(|p| {
                p.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if presets.is_empty() {
            presets.insert("(not run)".to_string());
        }
        for r in v["rules"].as_array().into_iter().flatten() {
            for p in &presets {
                cells.insert((r.as_str().unwrap_or("").to_string(), p.clone()));
            }
        }
        runs += v["trace"]["runs"].as_array().map_or(0, Vec::len);
        let id = v["id"].as_str().unwrap_or("");
        if !dom.contains(&format!("<section class=\"vector\" id=\"v-{id}\">")) {
            return Err(format!("no section for {id}"));
        }
    }
    let want = cells.len() * profiles;
    let have = dom.matches("<td class=\"cell ").count();
    if have != want {
        return Err(format!("{have} matrix cells rendered, {want} expected"));
    }
    let timelines = dom
        .matches("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\"")
        .count();
    if timelines != runs {
        return Err(format!("{timelines} timelines, {runs} runs"));
    }
    Ok(())
}

/// Vector files below `vectors/`, as paths relative to it (presets left out).
fn vector_files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() && name != "presets" {
            out.extend(vector_files(&p, &format!("{prefix}{name}/")));
        } else if name.ends_with(".yaml") && !prefix.is_empty() {
            out.push(format!("{prefix}{name}"));
        }
    }
    out
}

#[test]
fn the_report_renders_in_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing in CI: .ci/run installs it with scripts/install-chromium.sh"
        );
        eprintln!(
            "SKIPPED: chromium is not installed (run scripts/install-chromium.sh as root to get this test)"
        );
        return;
    };
    // The whole suite with one vector broken, so one vector has failing steps to mark.
    let files = vector_files(&repo().join("vectors"), "");
    assert!(files.len() > 10, "{files:?}");
    let names: Vec<&str> = files.iter().map(String::as_str).collect();
    let root = suite(&names, |f, t| {
        if f == "free/free.yaml" {
            broken_free(f, t)
        } else {
            t
        }
    });
    let r = root.path();
    let out = repo().join("target/html-report");
    let _ = std::fs::remove_dir_all(&out);
    let o = dmaconf(
        r,
        &["run", "--format", "json", "--html", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let page = out.join("index.html");
    let shot = out.join("screenshot.png");
    let (dom, console) = render(&browser, &page, Some(&shot));
    check(&dom, &console, &report).unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );

    // The failing steps are marked in the failing vector's timeline, and only there.
    let section = |id: &str| {
        let start = dom.find(&format!("id=\"v-{id}\"")).unwrap();
        let end = dom[start..].find("</section>").unwrap() + start;
        dom[start..end].to_string()
    };
    let bad = section("free-no-effects-state-kept");
    assert_eq!(
        bad.matches("<rect class=\"failing\"").count(),
        1,
        "step 3 only"
    );
    assert!(!section("free-whole-reservation-reused").contains("class=\"failing\""));
    assert!(bad.contains("class=\"pte\"") && bad.contains("class=\"reservation\""));

    // The checks can fail: a script error, and a page without its matrix.
    let html = std::fs::read_to_string(&page).unwrap();
    let broken = out.join("broken.html");
    std::fs::write(
        &broken,
        html.replace("</body>", "<script>nope()</script></body>")
            .replace(
                "default-src 'none'",
                "default-src 'none'; script-src 'unsafe-inline'",
            ),
    )
    .unwrap();
    let (dom2, console2) = render(&browser, &broken, None);
    let e = check(&dom2, &console2, &report).unwrap_err();
    assert!(e.starts_with("console:"), "{e}");
    let start = html.find("<table class=\"matrix\"").unwrap();
    let end = html.find("</table>").unwrap();
    std::fs::write(&broken, format!("{}{}", &html[..start], &html[end..])).unwrap();
    let (dom3, console3) = render(&browser, &broken, None);
    let e = check(&dom3, &console3, &report).unwrap_err();
    assert!(e.contains("matrix cells rendered"), "{e}");
    std::fs::remove_file(&broken).unwrap();
}
