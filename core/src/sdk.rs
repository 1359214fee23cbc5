//! The plugin SDK: plain Rust traits a plugin author implements, and the glue that turns
//! them into a plugin file the host can load.
//!
//! ```ignore
//! struct MyPlugin;
//! impl roster_core::sdk::Plugin for MyPlugin {
//!     const NAME: &'static str = "mysis";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const DESCRIPTION: &'static str = "Rosters from MySIS exports";
//!     fn open(config: &str, ctx: OpenContext) -> Result<Box<dyn RecordSource>, PluginError> { … }
//! }
//! roster_core::export_plugin!(MyPlugin);
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RVec};
use prost::Message;

use crate::abi::{
    HostAbi, HostAbi_TO, HostBox, PluginErrorAbi, PluginInfoAbi, PluginModule, PluginModuleRef,
    RecordSourceAbi, RecordSourceAbi_TO, SourceBox,
};
use crate::error::{ErrorKind, PluginError};
pub use crate::handover::CheckpointBytes;
use crate::record::{Batch, Record};

/// Log levels a plugin can write at; the host decides what is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    fn from_u8(value: u8) -> Level {
        match value {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            _ => Level::Trace,
        }
    }
}

/// What the host provides to a running plugin. Implemented by the host; a plugin reaches
/// it through [`Host`].
pub trait HostHooks: Send + Sync {
    fn log(&self, level: Level, message: &str);
    /// `total` is `None` when the plugin cannot know how much is left.
    fn progress(&self, stage: &str, done: u64, total: Option<u64>);
    fn is_cancelled(&self) -> bool;
}

/// Hooks that drop every message and progress report and never cancel: for a source
/// driven on its own, as tests and fuzz targets do.
pub struct Silent;

impl HostHooks for Silent {
    fn log(&self, _: Level, _: &str) {}
    fn progress(&self, _: &str, _: u64, _: Option<u64>) {}
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// A plugin's handle on the host: logging, progress, cancellation. Cheap to clone and
/// safe to share with the plugin's own threads.
#[derive(Clone)]
pub struct Host(Arc<dyn HostHooks>);

impl Host {
    pub fn new(hooks: Arc<dyn HostHooks>) -> Self {
        Host(hooks)
    }

    pub fn log(&self, level: Level, message: &str) {
        self.0.log(level, message)
    }
    pub fn error(&self, message: &str) {
        self.log(Level::Error, message)
    }
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message)
    }
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message)
    }
    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message)
    }
    pub fn progress(&self, stage: &str, done: u64, total: Option<u64>) {
        self.0.progress(stage, done, total)
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
    /// `Err(cancelled)` once the host asked the plugin to stop; use it with `?`.
    pub fn check_cancelled(&self) -> Result<(), PluginError> {
        if self.is_cancelled() {
            Err(PluginError::cancelled())
        } else {
            Ok(())
        }
    }
}

/// Everything `Plugin::open` gets besides its config.
pub struct OpenContext {
    /// The folder that relative paths in the config are relative to (the config file's).
    pub base_dir: PathBuf,
    pub host: Host,
    /// The [`Checkpoint`](crate::record::Checkpoint) this source sent in its last run
    /// that the host applied, when there is one the host trusts: the same plugin and
    /// config, and nothing else has written the source's records since. A source that
    /// can continue from it starts its stream with [`Snapshot::continuing`](crate::record::Snapshot::continuing);
    /// one that cannot (the checkpoint is too old for its API) runs in full.
    pub checkpoint: Option<CheckpointBytes>,
}

/// A stream of records, pulled by the host one batch at a time.
///
/// Emit a record only after the records it references (schools and terms, then people,
/// then classes, then links); keep batches to a few thousand records so memory stays flat.
pub trait RecordSource: Send {
    /// The next batch, or `None` when the source is exhausted.
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError>;

    /// The next batch as it crosses the plugin boundary: its records appended to `out`
    /// as an encoded [`Batch`] (each with [`encode_record`]), `false` when the source is
    /// exhausted. What `out` holds after an error is discarded.
    ///
    /// The default encodes [`next_batch`](Self::next_batch)'s records. A source may
    /// encode each record as it makes it instead, so that a batch never exists as
    /// records in the plugin; it must then send exactly what `next_batch` would.
    fn next_batch_encoded(&mut self, out: &mut Vec<u8>) -> Result<bool, PluginError> {
        match self.next_batch()? {
            Some(records) => {
                let len: usize = records
                    .iter()
                    .map(|record| prost::encoding::message::encoded_len(1, record))
                    .sum();
                out.reserve(len);
                for record in &records {
                    encode_record(record, out);
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Appends `record` to `out` as one record of an encoded [`Batch`]: the bytes that
/// `Batch { records }.encode(..)` writes for it.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    prost::encoding::message::encode(1, record, out);
}

/// [`encode_record`] of an [`Enrollment`](crate::record::Enrollment) made of these
/// fields, without making it: for sources that emit millions of them.
pub fn encode_enrollment(class_id: &str, student_id: &str, out: &mut Vec<u8>) {
    let len = string_len(1, class_id) + string_len(2, student_id);
    record_header(5, len, out);
    put_string(1, class_id, out);
    put_string(2, student_id, out);
}

/// [`encode_record`] of a [`Relationship`](crate::record::Relationship) made of these
/// fields, without making it.
pub fn encode_relationship(
    parent_id: &str,
    student_id: &str,
    relationship: Option<&str>,
    contact_type: Option<&str>,
    out: &mut Vec<u8>,
) {
    let optional_len = |tag, text: Option<&str>| text.map_or(0, |text| field_len(tag, text));
    let len = string_len(1, parent_id)
        + string_len(2, student_id)
        + optional_len(3, relationship)
        + optional_len(4, contact_type);
    record_header(7, len, out);
    put_string(1, parent_id, out);
    put_string(2, student_id, out);
    for (tag, text) in [(3, relationship), (4, contact_type)] {
        if let Some(text) = text {
            put_field(tag, text, out);
        }
    }
}

/// A batch's record field holding a `Record` whose `kind` is the message `tag`, `len`
/// bytes long.
fn record_header(tag: u32, len: usize, out: &mut Vec<u8>) {
    let record_len = key_len(tag) + varint_len(len as u64) + len;
    prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(record_len as u64, out);
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(len as u64, out);
}

fn key_len(tag: u32) -> usize {
    prost::encoding::key_len(tag)
}

fn varint_len(value: u64) -> usize {
    prost::encoding::encoded_len_varint(value)
}

/// A field that is always sent (an `optional` one that is set).
fn field_len(tag: u32, text: &str) -> usize {
    key_len(tag) + varint_len(text.len() as u64) + text.len()
}

/// A plain (proto3) string field: not sent when empty.
fn string_len(tag: u32, text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        field_len(tag, text)
    }
}

fn put_field(tag: u32, text: &str, out: &mut Vec<u8>) {
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
}

fn put_string(tag: u32, text: &str, out: &mut Vec<u8>) {
    if !text.is_empty() {
        put_field(tag, text, out);
    }
}

/// Name, version and description of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    /// The plugin ABI version the plugin speaks.
    pub abi_version: u32,
}

/// What a plugin author implements.
pub trait Plugin: 'static {
    /// The name `plugin = "…"` in importer.toml refers to.
    const NAME: &'static str;
    const VERSION: &'static str;
    const DESCRIPTION: &'static str;

    /// Check the config and open a record source. Config errors should name the key.
    fn open(config: &str, ctx: OpenContext) -> Result<Box<dyn RecordSource>, PluginError>;
}

// ---- the plugin side of the boundary -------------------------------------------------

thread_local! {
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Set while this thread runs plugin code under `catch_unwind`.
    static IN_PLUGIN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Panics inside plugin code are caught at the boundary and reported as errors; printing
/// them too would write to stderr behind the host's back, so for those the hook only
/// remembers where. Every other panic goes to the hook that was there before — which
/// matters when a plugin is linked into the host (`LinkedPlugin`) and shares its hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_PLUGIN.with(|flag| flag.get()) {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                PANIC_LOCATION.with(|cell| *cell.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// Run plugin code, catching a panic and marking the thread as inside the plugin.
fn guarded<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let was = IN_PLUGIN.with(|flag| flag.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_PLUGIN.with(|flag| flag.set(was));
    result
}

fn panic_error(plugin: &str, payload: Box<dyn Any + Send>) -> PluginError {
    let message = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic payload".to_string()
    };
    let location = PANIC_LOCATION.with(|cell| cell.borrow_mut().take());
    let mut error = PluginError::new(
        ErrorKind::Panic,
        format!("plugin `{plugin}` panicked: {message}"),
    )
    .with_hint(
        "this is a bug in the plugin; report it to its author with the input that caused it",
    );
    if let Some(location) = location {
        error.message.push_str(&format!(" (at {location})"));
    }
    error
}

struct HostFromAbi(HostBox);

impl HostHooks for HostFromAbi {
    fn log(&self, level: Level, message: &str) {
        self.0.log(level as u8, message.into())
    }
    fn progress(&self, stage: &str, done: u64, total: Option<u64>) {
        self.0
            .progress(stage.into(), done, total.unwrap_or(u64::MAX))
    }
    fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// A plugin's source behind a panic guard: a panic becomes an error, and the source is
/// not called again after one.
struct GuardedSource {
    plugin: &'static str,
    inner: Box<dyn RecordSource>,
    poisoned: bool,
}

impl GuardedSource {
    fn new(plugin: &'static str, inner: Box<dyn RecordSource>) -> Self {
        GuardedSource {
            plugin,
            inner,
            poisoned: false,
        }
    }
}

impl RecordSource for GuardedSource {
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        if self.poisoned {
            return Err(PluginError::new(
                ErrorKind::Panic,
                "plugin source used after it panicked",
            ));
        }
        let inner = &mut self.inner;
        match guarded(|| inner.next_batch()) {
            Ok(result) => result,
            Err(payload) => {
                self.poisoned = true;
                Err(panic_error(self.plugin, payload))
            }
        }
    }

    fn next_batch_encoded(&mut self, out: &mut Vec<u8>) -> Result<bool, PluginError> {
        if self.poisoned {
            return Err(PluginError::new(
                ErrorKind::Panic,
                "plugin source used after it panicked",
            ));
        }
        let inner = &mut self.inner;
        match guarded(|| inner.next_batch_encoded(out)) {
            Ok(result) => result,
            Err(payload) => {
                self.poisoned = true;
                Err(panic_error(self.plugin, payload))
            }
        }
    }
}

struct SourceToAbi {
    source: GuardedSource,
    /// The size of the largest batch so far: the next one's buffer is allocated once.
    capacity: usize,
}

impl RecordSourceAbi for SourceToAbi {
    fn next_batch(&mut self) -> RResult<ROption<RVec<u8>>, PluginErrorAbi> {
        let mut bytes = Vec::with_capacity(self.capacity);
        match self.source.next_batch_encoded(&mut bytes) {
            Ok(true) => {
                self.capacity = self.capacity.max(bytes.len());
                RResult::ROk(ROption::RSome(RVec::from(bytes)))
            }
            Ok(false) => RResult::ROk(ROption::RNone),
            Err(error) => RResult::RErr(error.into()),
        }
    }
}

extern "C" fn info_fn<P: Plugin>() -> PluginInfoAbi {
    PluginInfoAbi {
        name: P::NAME.into(),
        version: P::VERSION.into(),
        description: P::DESCRIPTION.into(),
    }
}

extern "C" fn open_fn<P: Plugin>(
    config: RStr<'_>,
    base_dir: RStr<'_>,
    host: HostBox,
) -> RResult<SourceBox, PluginErrorAbi> {
    install_panic_hook();
    let (checkpoint, config) = crate::abi::checkpoint_and_config(config.as_str());
    let host = Host::new(Arc::new(HostFromAbi(host)));
    let checkpoint = checkpoint.unwrap_or_else(|error| {
        host.warn(&format!(
            "the last run's checkpoint cannot be taken over ({error}): the source runs in full"
        ));
        None
    });
    if let Some(checkpoint) = checkpoint.as_ref().filter(|c| c.in_shared_memory()) {
        host.debug(&format!(
            "the last run's checkpoint: {} bytes, read in place from the host's memory",
            checkpoint.len()
        ));
    }
    let ctx = OpenContext {
        base_dir: PathBuf::from(base_dir.as_str()),
        host,
        checkpoint,
    };
    match guarded(|| P::open(config, ctx)) {
        Ok(Ok(inner)) => RResult::ROk(RecordSourceAbi_TO::from_value(
            SourceToAbi {
                source: GuardedSource::new(P::NAME, inner),
                capacity: 0,
            },
            TD_Opaque,
        )),
        Ok(Err(error)) => RResult::RErr(error.into()),
        Err(payload) => RResult::RErr(panic_error(P::NAME, payload).into()),
    }
}

#[doc(hidden)]
pub fn __module<P: Plugin>(abi_version: u32) -> PluginModuleRef {
    PluginModule {
        abi_version,
        info: info_fn::<P>,
        open: open_fn::<P>,
    }
    .leak_into_prefix()
}

/// Export a [`Plugin`] from a `cdylib` crate so the host can load it.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::__export_plugin_with_abi!($plugin, $crate::ABI_VERSION);
    };
}

/// Like [`export_plugin!`] but claiming another ABI version: only for testing the host's
/// refusal of plugins built against another ABI.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin_with_abi {
    ($plugin:ty, $abi:expr) => {
        #[doc(hidden)]
        // The symbol abi_stable looks up; `roster_core::abi::ROOT_MODULE_SYMBOL` is tested
        // against abi_stable's own constant.
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __ROSTER_PLUGIN_ROOT_MODULE: $crate::__private::abi_stable::library::LibHeader = {
            fn root_module() -> $crate::abi::PluginModuleRef {
                $crate::sdk::__module::<$plugin>($abi)
            }
            extern "C" fn load() -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(root_module)
            }
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<$crate::abi::PluginModuleRef>(
                    load,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

// ---- the host side of the boundary ---------------------------------------------------

struct HostToAbi(Arc<dyn HostHooks>);

impl HostAbi for HostToAbi {
    fn log(&self, level: u8, message: RStr<'_>) {
        self.0.log(Level::from_u8(level), message.as_str())
    }
    fn progress(&self, stage: RStr<'_>, done: u64, total: u64) {
        let total = (total != u64::MAX).then_some(total);
        self.0.progress(stage.as_str(), done, total)
    }
    fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

pub(crate) fn host_box(hooks: Arc<dyn HostHooks>) -> HostBox {
    HostAbi_TO::from_value(HostToAbi(hooks), TD_Opaque)
}

pub(crate) fn info_from_abi(info: PluginInfoAbi, abi_version: u32) -> PluginInfo {
    PluginInfo {
        name: info.name.into(),
        version: info.version.into(),
        description: info.description.into(),
        abi_version,
    }
}

pub(crate) struct SourceFromAbi(pub(crate) SourceBox);

impl RecordSource for SourceFromAbi {
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        match self.0.next_batch() {
            RResult::ROk(ROption::RSome(bytes)) => {
                decode_batch(bytes.as_slice()).map(Some).map_err(|error| {
                    PluginError::new(
                        ErrorKind::Other,
                        format!("undecodable record batch: {error}"),
                    )
                })
            }
            RResult::ROk(ROption::RNone) => Ok(None),
            RResult::RErr(error) => Err(error.into()),
        }
    }
}

/// A batch's records as the host decodes them from the boundary's bytes: into a vector
/// of the right size from the start. A batch holding anything but records (fields of a
/// later version) is decoded the general way.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Record>, prost::DecodeError> {
    match record_spans(bytes) {
        Some(count) => {
            let mut records = Vec::with_capacity(count);
            let mut rest = bytes;
            while !rest.is_empty() {
                let (body, after) = next_record_span(rest).expect("scanned above");
                // Decoded in place: a record is a few hundred bytes, not worth moving.
                records.push(Record::default());
                let last = records.last_mut().expect("just pushed");
                last.merge(body)?;
                rest = after;
            }
            Ok(records)
        }
        None => Batch::decode(bytes).map(|batch| batch.records),
    }
}

/// How many records `bytes` holds, when it holds nothing but well-formed record fields.
fn record_spans(mut bytes: &[u8]) -> Option<usize> {
    let mut count = 0;
    while !bytes.is_empty() {
        let (_, rest) = next_record_span(bytes)?;
        bytes = rest;
        count += 1;
    }
    Some(count)
}

/// The first field of `bytes` when it is a record (field 1, length-delimited): its body
/// and what follows it.
fn next_record_span(mut bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let key = prost::encoding::decode_varint(&mut bytes).ok()?;
    if key != (1 << 3 | 2) {
        return None;
    }
    let len = usize::try_from(prost::encoding::decode_varint(&mut bytes).ok()?).ok()?;
    if len > bytes.len() {
        return None;
    }
    Some(bytes.split_at(len))
}

pub(crate) fn open_in_process<P: Plugin>(
    config: &str,
    base_dir: &Path,
    checkpoint: Option<CheckpointBytes>,
    hooks: Arc<dyn HostHooks>,
) -> Result<Box<dyn RecordSource>, PluginError> {
    install_panic_hook();
    let ctx = OpenContext {
        base_dir: base_dir.to_path_buf(),
        host: Host::new(hooks),
        checkpoint,
    };
    match guarded(|| P::open(config, ctx)) {
        Ok(Ok(inner)) => Ok(Box::new(GuardedSource::new(P::NAME, inner))),
        Ok(Err(error)) => Err(error),
        Err(payload) => Err(panic_error(P::NAME, payload)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Enrollment, Person, Snapshot};

    fn records() -> Vec<Record> {
        vec![
            Person {
                source_id: "S1".into(),
                first_name: "Ada".into(),
                ..Default::default()
            }
            .into(),
            Enrollment {
                student_id_kind: None,
                class_id: "C1".into(),
                student_id: "S1".into(),
            }
            .into(),
            Snapshot::default().into(),
            Record { kind: None },
        ]
    }

    /// The checkpoint as `open` saw it, and what the plugin logged on the way in.
    fn opened_with(config: &str) -> (Option<Vec<u8>>, Vec<String>) {
        use std::sync::Mutex;
        static SEEN: Mutex<Option<Option<Vec<u8>>>> = Mutex::new(None);
        struct Keeps;
        impl Plugin for Keeps {
            const NAME: &'static str = "keeps";
            const VERSION: &'static str = "0";
            const DESCRIPTION: &'static str = "";
            fn open(config: &str, ctx: OpenContext) -> Result<Box<dyn RecordSource>, PluginError> {
                assert_eq!(
                    config, "path = \"x\"\n",
                    "the plugin sees its own config only"
                );
                *SEEN.lock().unwrap() = Some(ctx.checkpoint.map(|bytes| bytes.to_vec()));
                Err(PluginError::input("enough"))
            }
        }
        struct Logs(Mutex<Vec<String>>);
        impl HostHooks for Logs {
            fn log(&self, level: Level, message: &str) {
                self.0.lock().unwrap().push(format!("{level:?}: {message}"));
            }
            fn progress(&self, _: &str, _: u64, _: Option<u64>) {}
            fn is_cancelled(&self) -> bool {
                false
            }
        }
        let logs = Arc::new(Logs(Mutex::new(Vec::new())));
        let _ = open_fn::<Keeps>(config.into(), ".".into(), host_box(logs.clone()));
        let seen = SEEN.lock().unwrap().take().expect("opened");
        let logged = logs.0.lock().unwrap().clone();
        (seen, logged)
    }

    #[test]
    fn a_checkpoint_line_that_cannot_be_taken_is_a_warning_and_a_run_in_full() {
        let (seen, logged) = opened_with("# roster-checkpoint: 0g\npath = \"x\"\n");
        assert_eq!(seen, None);
        assert_eq!(
            logged,
            ["Warn: the last run's checkpoint cannot be taken over (not hex): the source runs in full"]
        );
        let (seen, logged) = opened_with("# roster-checkpoint: 00ff\npath = \"x\"\n");
        assert_eq!(seen, Some(vec![0, 0xff]));
        assert!(logged.is_empty(), "{logged:?}");
        #[cfg(target_os = "linux")]
        {
            let (seen, logged) = opened_with("# roster-checkpoint-fd: 987654 2\npath = \"x\"\n");
            assert_eq!(seen, None);
            assert_eq!(logged.len(), 1, "{logged:?}");
            assert!(
                logged[0].starts_with("Warn: the last run's checkpoint cannot be taken over ("),
                "{logged:?}"
            );
        }
    }

    #[test]
    fn batches_decode_record_by_record() {
        let mut bytes = Vec::new();
        for record in &records() {
            encode_record(record, &mut bytes);
        }
        assert_eq!(bytes, Batch { records: records() }.encode_to_vec());
        assert_eq!(decode_batch(&bytes).unwrap(), records());
        assert_eq!(decode_batch(&[]).unwrap(), Vec::<Record>::new());
    }

    #[test]
    fn link_records_encode_as_their_records() {
        use crate::record::Relationship;
        let long = "x".repeat(200);
        let texts = ["", "C1", "Zoë", long.as_str()];
        for a in texts {
            for b in texts {
                let mut expected = Vec::new();
                let mut found = Vec::new();
                let enrollment = Enrollment {
                    student_id_kind: None,
                    class_id: a.into(),
                    student_id: b.into(),
                };
                encode_record(&enrollment.into(), &mut expected);
                encode_enrollment(a, b, &mut found);
                assert_eq!(found, expected, "{a:?} {b:?}");
                for c in [None, Some(""), Some("Mother"), Some(long.as_str())] {
                    for d in [None, Some(""), Some("parent")] {
                        let mut expected = Vec::new();
                        let mut found = Vec::new();
                        let relationship = Relationship {
                            student_id_kind: None,
                            parent_id: a.into(),
                            student_id: b.into(),
                            relationship: c.map(Into::into),
                            contact_type: d.map(Into::into),
                        };
                        encode_record(&relationship.into(), &mut expected);
                        encode_relationship(a, b, c, d, &mut found);
                        assert_eq!(found, expected, "{a:?} {b:?} {c:?} {d:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn batches_with_other_fields_or_broken_ones_decode_the_general_way() {
        let mut bytes = Batch { records: records() }.encode_to_vec();
        // A field a later version might add (tag 2, varint): skipped.
        bytes.extend_from_slice(&[2 << 3, 7]);
        assert_eq!(decode_batch(&bytes).unwrap(), records());
        // A record cut short is an error, as it always was.
        let mut cut = Batch { records: records() }.encode_to_vec();
        cut.pop();
        assert!(decode_batch(&cut).is_err());
    }
}
