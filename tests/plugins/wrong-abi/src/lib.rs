//! A plugin built as if against a future plugin ABI: the host must refuse to load it and
//! say what to rebuild.

use roster_core::sdk::{OpenContext, Plugin, RecordSource};
use roster_core::PluginError;

struct WrongAbi;

impl Plugin for WrongAbi {
    const NAME: &'static str = "wrong-abi";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Test plugin with a foreign ABI version";

    fn open(_config: &str, _ctx: OpenContext) -> Result<Box<dyn RecordSource>, PluginError> {
        Err(PluginError::config("never opened"))
    }
}

roster_core::__export_plugin_with_abi!(WrongAbi, roster_core::ABI_VERSION + 998);
