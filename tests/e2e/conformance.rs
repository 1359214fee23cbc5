//! `roster plugin check`: every plugin the project ships passes the conformance kit, as
//! the real plugin file loaded through the ABI.

use roster_clever_mock::{District, MockServer};

use crate::clever::TOKEN;
use crate::harness::{fixtures, install, plugin_file, Sandbox};

fn check(sandbox: &Sandbox, plugin: &str, config: &str) -> String {
    std::fs::write(sandbox.dir.path().join("plugin.toml"), config).unwrap();
    let path = install().bin_dir.join(plugin_file(plugin));
    let out = sandbox
        .cmd()
        .env("ROSTER_E2E_CLEVER_TOKEN", TOKEN)
        .args([
            "plugin",
            "check",
            path.to_str().unwrap(),
            "--plugin-config",
            "plugin.toml",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{plugin}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("pass") && !stdout.contains("FAIL"),
        "{plugin}:\n{stdout}"
    );
    stdout
}

#[test]
fn every_shipped_plugin_passes_the_conformance_kit() {
    let sandbox = Sandbox::new("[database]\npath = \"roster.db\"\n");
    let pickatime = format!(
        "format = \"pickatime\"\npath = \"{}\"\n",
        fixtures().join("pickatime").display()
    );
    let report = check(&sandbox, "csv", &pickatime);
    assert!(report.contains("records.references"), "{report}");
    check(
        &sandbox,
        "csv",
        &format!(
            "format = \"clever-sftp\"\npath = \"{}\"\n",
            fixtures().join("clever-sftp").display()
        ),
    );
    check(
        &sandbox,
        "oneroster",
        &format!(
            "path = \"{}\"\n",
            fixtures().join("oneroster").join("v1.1").display()
        ),
    );
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    for version in ["v2.1", "v3.0"] {
        check(
            &sandbox,
            "clever",
            &format!(
                "api_version = \"{version}\"\nbase_url = \"{}\"\ntoken_env = \"ROSTER_E2E_CLEVER_TOKEN\"\nmax_retry_wait_ms = 20\n",
                server.base_url()
            ),
        );
    }
}

#[test]
fn a_plugin_that_breaks_the_contract_fails_the_kit() {
    let sandbox = Sandbox::new("");
    std::fs::write(sandbox.dir.path().join("plugin.toml"), "").unwrap();
    let path = install().test_plugin_dir.join(plugin_file("panicking"));
    let out = sandbox
        .roster(&[
            "plugin",
            "check",
            path.to_str().unwrap(),
            "--plugin-config",
            "plugin.toml",
        ])
        .failed();
    assert!(out.stdout.contains("FAIL"), "{}", out.stdout);
    assert!(out.stderr.contains("checks failed"), "{}", out.stderr);
}
