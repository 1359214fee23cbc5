//! The plugin as the host really loads it: the cdylib through the stable ABI, with its own
//! tokio runtime inside, against the mock.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{normalise, Setup, TestHost};
use roster_clever_mock::{Fault, FaultRule};
use roster_core::loader::{plugin_file_name, PluginFile, PluginHandle};
use roster_core::ErrorKind;

/// `target/<profile>/deps/libroster_plugin_clever.so`: cargo builds the cdylib next to
/// this test's executable when it builds the library for the test.
fn plugin_file() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().join(plugin_file_name("clever"))
}

#[test]
fn the_cdylib_imports_through_the_abi() {
    let path = plugin_file();
    let plugin = PluginFile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(plugin.info().name, "clever");

    let setup = Setup::new();
    let linked = setup.run("v3.0", "");
    let host = Arc::new(TestHost::default());
    let mut source = plugin
        .open(
            &setup.config("v3.0", "page_size = 25"),
            Path::new("."),
            host.clone(),
        )
        .unwrap();
    let mut records = Vec::new();
    while let Some(batch) = source.next_batch().unwrap() {
        records.extend(batch);
    }
    assert_eq!(normalise(&records), normalise(linked.records()));

    // Errors cross the boundary with their kind, location and hint.
    setup.server.inject(
        FaultRule::new(Fault::Unauthorized)
            .on_path("/users")
            .mid_pagination(),
    );
    let mut source = plugin
        .open(
            &setup.config("v3.0", "page_size = 25"),
            Path::new("."),
            host.clone(),
        )
        .unwrap();
    let error = source.next_batch().unwrap_err();
    assert_eq!(error.kind, ErrorKind::Auth);
    assert!(error.location.unwrap().ends_with("(HTTP 401)"));
    assert!(!error.message.contains(&setup.token));
    for line in host.lines() {
        assert!(!line.contains(&setup.token), "{line}");
    }
}
