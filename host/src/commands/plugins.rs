//! `roster plugins`: what can be loaded, from where, and what cannot.

use std::io::Write;

use roster_core::loader::PluginHandle;

use crate::error::CliError;

pub fn run(dirs: &[std::path::PathBuf]) -> Result<(), CliError> {
    let found = crate::plugins::discover(dirs);
    let mut out = std::io::stdout().lock();
    let mut loaded = 0;
    for (path, result) in &found {
        match result {
            Ok(plugin) => {
                loaded += 1;
                let _ = writeln!(
                    out,
                    "{}",
                    crate::plugins::describe(plugin as &dyn PluginHandle)
                );
            }
            Err(error) => {
                tracing::warn!("{}: {error}", path.display());
                if let Some(hint) = error.hint() {
                    tracing::info!("hint: {hint}");
                }
            }
        }
    }
    if loaded == 0 {
        return Err(CliError::new("no plugins found").with_hint(format!(
            "looked in {}; build them with `cargo build --workspace`",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}
