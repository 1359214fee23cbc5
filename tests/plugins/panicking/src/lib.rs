//! A plugin that panics: in `open` when its config says `panic_in = "open"`, otherwise
//! in the second `next_batch` call, after one good batch.

use roster_core::record::{Record, School};
use roster_core::sdk::{OpenContext, Plugin, RecordSource};
use roster_core::PluginError;

struct Panicking;

struct Source {
    calls: u32,
}

impl RecordSource for Source {
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        self.calls += 1;
        if self.calls == 1 {
            let school = School {
                source_id: "s1".into(),
                name: "Test School".into(),
                ..Default::default()
            };
            return Ok(Some(vec![school.into()]));
        }
        panic!("deliberate test panic in next_batch");
    }
}

impl Plugin for Panicking {
    const NAME: &'static str = "panicking";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Test plugin that panics";

    fn open(config: &str, _ctx: OpenContext) -> Result<Box<dyn RecordSource>, PluginError> {
        if config.contains("panic_in = \"open\"") {
            panic!("deliberate test panic in open");
        }
        Ok(Box::new(Source { calls: 0 }))
    }
}

roster_core::export_plugin!(Panicking);
