//! `roster check`: the config parses, every source's plugin loads and accepts its table.
//! Opening a source only checks its config; no records are read.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use roster_core::loader::PluginHandle;

use crate::context::HostContext;
use crate::error::CliError;
use crate::jobs::Env;

pub fn run(env: &Env) -> Result<(), CliError> {
    let config = &env.config;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "config    {}", config.path.display());
    let _ = writeln!(out, "database  {}", config.database.display());
    let mut problems = 0;
    for source in &config.sources {
        let plugin = match crate::plugins::load(&source.plugin, &env.plugin_dirs) {
            Ok(plugin) => plugin,
            Err(error) => {
                problems += 1;
                let _ = writeln!(out, "source    {:<12} error: {error}", source.name);
                continue;
            }
        };
        let context = Arc::new(HostContext::new(
            &source.name,
            Arc::new(AtomicBool::new(false)),
            false,
        ));
        match plugin.open(&source.plugin_config, &config.base_dir, context) {
            Ok(_) => {
                let _ = writeln!(
                    out,
                    "source    {:<12} ok ({} {})",
                    source.name,
                    plugin.info().name,
                    plugin.info().version
                );
            }
            Err(error) => {
                problems += 1;
                let _ = writeln!(out, "source    {:<12} error: {error}", source.name);
            }
        }
    }
    for event in &config.events {
        let _ = writeln!(
            out,
            "event     {:<24} source {}, sync {}",
            event.name,
            event.source,
            if event.sync { "on" } else { "off" }
        );
    }
    if problems > 0 {
        return Err(CliError::new(format!("{problems} source(s) have problems")));
    }
    Ok(())
}
