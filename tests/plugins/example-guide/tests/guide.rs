//! The walkthrough of docs/plugins.md, tested: the guide's code is this crate's code, the
//! plugin file it builds loads the way the host loads plugins, and it passes the
//! conformance kit — including a cancel in the middle of its stream.

use std::path::{Path, PathBuf};

use roster_core::conformance::{self, Outcome};
use roster_core::loader::{LinkedPlugin, PluginFile, PluginHandle};
use roster_core::ErrorKind;
use roster_plugin_example_guide::ExamplePlugin;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text of the fenced block that follows `marker` in the guide.
fn block_after(guide: &str, marker: &str) -> String {
    let start = guide
        .find(marker)
        .unwrap_or_else(|| panic!("docs/plugins.md has no `{marker}`"));
    let rest = &guide[start..];
    let open = rest.find("```").expect("a fenced block after the marker");
    let body = &rest[open..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    let close = body.find("\n```").expect("a closing fence");
    format!("{}\n", &body[..close])
}

fn guide() -> String {
    std::fs::read_to_string(crate_dir().join("../../../docs/plugins.md")).unwrap()
}

#[test]
fn the_guide_shows_exactly_this_code() {
    let guide = guide();
    let code = std::fs::read_to_string(crate_dir().join("src/lib.rs")).unwrap();
    assert!(
        block_after(&guide, "<!-- file: tests/plugins/example-guide/src/lib.rs -->") == code,
        "the code in docs/plugins.md and tests/plugins/example-guide/src/lib.rs differ: change both"
    );
    let manifest = block_after(&guide, "<!-- file: Cargo.toml -->");
    assert!(
        manifest.contains("crate-type = [\"cdylib\", \"rlib\"]"),
        "{manifest}"
    );
    assert!(manifest.contains("roster-core"), "{manifest}");
}

/// A folder with `n` students in people.txt.
fn people(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("people")).unwrap();
    let text: String = (1..=n)
        .map(|i| format!("S{i},First{i},Last{i}\n"))
        .collect();
    std::fs::write(dir.path().join("people/people.txt"), text).unwrap();
    dir
}

fn kit(plugin: &dyn PluginHandle, base: &Path) -> conformance::Report {
    let report = conformance::check(plugin, "path = \"people\"\n", base);
    println!("{report}");
    report.assert_ok();
    report
}

#[test]
fn the_plugin_file_loads_and_passes_the_kit() {
    let file = conformance::build_plugin_file("roster-plugin-example-guide").unwrap();
    let plugin = PluginFile::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plugin.info().name, "example-guide");

    // The walkthrough's own people.txt.
    let report = kit(&plugin, &crate_dir());
    assert_eq!(report.counts.students, 3);

    // 250 students in batches of 100: the kit cancels after the first batch.
    let dir = people(250);
    let report = kit(&plugin, dir.path());
    assert_eq!(report.counts.batches, 3);
    let cancel = report.get("cancel").unwrap();
    assert_eq!(cancel.outcome, Outcome::Pass);
    assert_eq!(
        cancel.message,
        "stopped with Cancelled after 0 further batches"
    );
    assert!(report.checks.iter().all(|c| c.outcome == Outcome::Pass));
}

#[test]
fn linked_in_it_reports_errors_where_they_are() {
    let plugin = LinkedPlugin::<ExamplePlugin>::default();
    kit(&plugin, &crate_dir());
    let dir = people(2);
    std::fs::write(
        dir.path().join("people/people.txt"),
        "S1,Ada,Lovelace\nS2,Alan\n",
    )
    .unwrap();
    let hooks = std::sync::Arc::new(NoHost);
    let error = match plugin.open("path = \"people\"\n", dir.path(), hooks) {
        Err(error) => error,
        Ok(_) => panic!("a short line must be an error"),
    };
    assert_eq!(error.kind, ErrorKind::Input);
    assert_eq!(error.location.as_deref(), Some("people/people.txt:2:1"));
    assert_eq!(error.message, "expected `id,first,last`, found 2 fields");
}

struct NoHost;

impl roster_core::sdk::HostHooks for NoHost {
    fn log(&self, _level: roster_core::sdk::Level, _message: &str) {}
    fn progress(&self, _stage: &str, _done: u64, _total: Option<u64>) {}
    fn is_cancelled(&self) -> bool {
        false
    }
}
