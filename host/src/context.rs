//! The host context handed to plugins: their logs go to our log, their progress to our
//! progress display, and Ctrl-C reaches them as cancellation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use roster_core::sdk::{HostHooks, Level};

use crate::pipeline::Progress;

pub struct HostContext {
    plugin: String,
    bar: ProgressBar,
    cancelled: Arc<AtomicBool>,
}

impl HostContext {
    pub fn new(plugin: &str, cancelled: Arc<AtomicBool>, show_progress: bool) -> Self {
        let bar = if show_progress {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {pos} records {msg} ({elapsed})")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        bar.set_prefix(plugin.to_string());
        HostContext {
            plugin: plugin.to_string(),
            bar,
            cancelled,
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl HostHooks for HostContext {
    fn log(&self, level: Level, message: &str) {
        let plugin = &self.plugin;
        self.bar.suspend(|| match level {
            Level::Error => tracing::error!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Trace => tracing::trace!(plugin, "{message}"),
        });
    }

    fn progress(&self, stage: &str, done: u64, total: Option<u64>) {
        let message = match total {
            Some(total) => format!("[{stage} {done}/{total}]"),
            None => format!("[{stage} {done}]"),
        };
        self.bar.set_message(message);
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

impl Progress for HostContext {
    fn records(&self, done: u64) {
        self.bar.set_position(done);
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}
