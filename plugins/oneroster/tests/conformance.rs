//! The OneRoster plugin passes the conformance kit: linked in on both fixtures and a
//! .zip, and as the real plugin file loaded the way the host loads it.

mod common;

use std::path::Path;

use common::workspace;
use roster_core::conformance::{self, Outcome};
use roster_core::loader::{LinkedPlugin, PluginFile, PluginHandle};
use roster_plugin_oneroster::OneRosterPlugin;

fn kit(plugin: &dyn PluginHandle, config: &str, base: &Path) -> conformance::Report {
    let report = conformance::check(plugin, config, base);
    println!("{report}");
    report.assert_ok();
    report
}

#[test]
fn linked_plugin_passes_on_both_fixtures() {
    let plugin = LinkedPlugin::<OneRosterPlugin>::default();
    let report = kit(
        &plugin,
        "path = \"fixtures/oneroster/v1.1\"\n",
        &workspace(),
    );
    assert_eq!(report.counts.students, 6);
    assert_eq!(report.counts.relationships, 7);
    assert!(report.checks.iter().all(|c| c.outcome == Outcome::Pass));
    let report = kit(
        &plugin,
        "path = \"fixtures/oneroster/v1.2\"\n",
        &workspace(),
    );
    assert_eq!(report.counts.removed, 2);
}

#[test]
fn plugin_file_passes_on_a_zip() {
    let file = conformance::build_plugin_file("roster-plugin-oneroster").unwrap();
    let plugin = PluginFile::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plugin.info().name, "oneroster");

    let dir = tempfile::tempdir().unwrap();
    let mut writer =
        zip::ZipWriter::new(std::fs::File::create(dir.path().join("district.zip")).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    let package = workspace().join("fixtures/oneroster/v1.1");
    for entry in std::fs::read_dir(&package).unwrap() {
        let entry = entry.unwrap();
        writer
            .start_file(entry.file_name().to_str().unwrap(), options)
            .unwrap();
        std::io::Write::write_all(&mut writer, &std::fs::read(entry.path()).unwrap()).unwrap();
    }
    writer.finish().unwrap();
    let report = kit(&plugin, "path = \"district.zip\"\n", dir.path());
    assert_eq!(report.counts.classes, 5);
    assert_eq!(report.origin, file.display().to_string());
}
