//! The csv plugin passes the conformance kit in both formats: linked in, and as the real
//! plugin file loaded the way the host loads it.

mod common;

use common::workspace;
use roster_core::conformance::{self, Outcome};
use roster_core::loader::{LinkedPlugin, PluginFile, PluginHandle};
use roster_plugin_csv::CsvPlugin;

const PICKATIME: &str = "format = \"pickatime\"\npath = \"fixtures/pickatime\"\nschool = \"Maple Grove Middle School\"\nterm = \"2026-27\"\n";
const CLEVER_SFTP: &str = "format = \"clever-sftp\"\npath = \"fixtures/clever-sftp\"\n";

fn kit(plugin: &dyn PluginHandle, config: &str) -> conformance::Report {
    let report = conformance::check(plugin, config, &workspace());
    println!("{report}");
    report.assert_ok();
    report
}

#[test]
fn linked_plugin_passes_in_both_formats() {
    let plugin = LinkedPlugin::<CsvPlugin>::default();
    let report = kit(&plugin, PICKATIME);
    assert_eq!(report.counts.students, 301);
    assert_eq!(report.counts.removed, 1);
    let report = kit(&plugin, CLEVER_SFTP);
    assert_eq!(report.counts.parents, 6);
    assert!(report.checks.iter().all(|c| c.outcome == Outcome::Pass));
}

#[test]
fn plugin_file_passes_in_both_formats() {
    let file = conformance::build_plugin_file("roster-plugin-csv").unwrap();
    let plugin = PluginFile::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plugin.info().name, "csv");
    for config in [PICKATIME, CLEVER_SFTP] {
        let report = kit(&plugin, config);
        assert_eq!(report.origin, file.display().to_string());
    }
}
