//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::DedupePolicy;

/// Bring school rosters from Clever and data files into one SQLite roster database.
#[derive(Debug, Parser)]
#[command(
    name = "roster",
    version,
    about = "Bring school rosters from Clever and data files into one SQLite roster database",
    long_about = None
)]
pub struct Cli {
    /// The configuration file
    #[arg(
        long,
        short,
        global = true,
        default_value = "importer.toml",
        env = "ROSTER_CONFIG"
    )]
    pub config: PathBuf,

    /// Also look for plugin files in this folder (before the default places)
    #[arg(long, global = true, value_name = "DIR")]
    pub plugin_dir: Vec<PathBuf>,

    /// Show more (-v: debug, -vv: trace); RUST_LOG overrides
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Show only errors
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every [[event]] job in the config, creating events that do not exist yet
    Import(ImportArgs),
    /// List the plugins roster can load, with their versions
    Plugins,
    /// Check the configuration and the plugins it needs, without importing
    Check,
    /// Plugin authors' tools
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Create, list, show and delete events
    #[command(subcommand)]
    Events(EventsCommand),
    /// Look at a source's terms and sections before importing, or at the database's
    #[command(subcommand)]
    Browse(BrowseCommand),
    /// The Class Editor: list, delete, hide and unhide an event's classes
    #[command(subcommand)]
    Classes(ClassesCommand),
    /// Run the sync now, see its status and history, start or stop it
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Run every sync-enabled event nightly (01:00 local by default) until stopped
    Daemon(DaemonArgs),
    /// The schools attached to events and the yearly integration fee
    Fees(FeesArgs),
    /// Contacts: delete everyone at an access level and below (the clean-slate step)
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Export an event's reports (classes, enrollments, contacts) as CSV
    Export(ExportArgs),
    /// Preview (and then apply) switching an event to a new source: linked, new, left behind
    Migrate(MigrateArgs),
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Contacts per role and access level
    List,
    /// Delete every contact at LEVEL and below (e.g. event_admin keeps only admins)
    Delete {
        /// customer, appointment_viewer, appointment_maker, resource_admin or event_admin
        #[arg(long, value_parser = parse_level)]
        level: crate::config::AccessLevel,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
}

fn parse_level(text: &str) -> Result<crate::config::AccessLevel, String> {
    use crate::config::AccessLevel::*;
    match text {
        "customer" => Ok(Customer),
        "appointment_viewer" => Ok(AppointmentViewer),
        "appointment_maker" => Ok(AppointmentMaker),
        "resource_admin" => Ok(ResourceAdmin),
        "event_admin" => Ok(EventAdmin),
        "admin" => {
            Err("refusing to delete administrators; the highest level is event_admin".into())
        }
        other => Err(format!("unknown access level `{other}`")),
    }
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[arg(long)]
    pub event: String,
    /// Folder to write classes.csv, enrollments.csv and contacts.csv into
    #[arg(long, default_value = "reports")]
    pub dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The event to switch; its source (or --source) is the new one
    #[arg(long)]
    pub event: String,
    /// Switch the event to this [[source]] first
    #[arg(long)]
    pub source: Option<String>,
    /// Apply the switch after the preview (asks for confirmation)
    #[arg(long)]
    pub apply: bool,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Run the conformance kit on a plugin file: metadata, bad config, the whole stream's
    /// references, and cancellation
    Check {
        /// The plugin file (libroster_plugin_NAME.so)
        path: PathBuf,
        /// Use this [[source]]'s table from the config as the plugin's good config
        #[arg(long, conflicts_with = "plugin_config")]
        source: Option<String>,
        /// A TOML file holding the plugin's good config (paths relative to its folder)
        #[arg(long, value_name = "FILE")]
        plugin_config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List events
    List,
    /// Show one event: its source, selection, sync setting, classes and last runs
    Show { name: String },
    /// Create an event, optionally from another event as a template
    Create(CreateEventArgs),
    /// Delete events (their classes stay in the roster; contacts are untouched)
    Delete(DeleteEventsArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateEventArgs {
    pub name: String,
    /// Copy source, school, terms, sync setting and classes (with hidden flags) from this event
    #[arg(long, value_name = "EVENT")]
    pub from: Option<String>,
    /// The source to import from (a [[source]] name)
    #[arg(long)]
    pub source: Option<String>,
    /// One school: name or source id
    #[arg(long)]
    pub school: Option<String>,
    /// A term name or id (repeatable)
    #[arg(long = "term", value_name = "TERM")]
    pub terms: Vec<String>,
    /// Turn the nightly sync on for the new event
    #[arg(long)]
    pub sync: bool,
}

#[derive(Debug, clap::Args)]
pub struct DeleteEventsArgs {
    /// Events to delete
    pub names: Vec<String>,
    /// Delete every event except this one
    #[arg(long, value_name = "EVENT", conflicts_with = "names")]
    pub all_except: Option<String>,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct BrowseFrom {
    /// Read from this source (a [[source]] name) without importing anything
    #[arg(long, conflicts_with = "db")]
    pub source: Option<String>,
    /// Read what is already in the database
    #[arg(long)]
    pub db: bool,
}

#[derive(Debug, Subcommand)]
pub enum BrowseCommand {
    /// Terms: name, dates, number of sections
    Terms {
        #[command(flatten)]
        from: BrowseFrom,
    },
    /// The sections of one term (name or id): name, teachers, number of students
    Sections {
        #[command(flatten)]
        from: BrowseFrom,
        /// A term name or id; all sections when absent
        #[arg(long)]
        term: Option<String>,
    },
    /// One section's teachers and students
    Section {
        #[command(flatten)]
        from: BrowseFrom,
        /// The section's source id (or, with --db, its database id)
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClassesCommand {
    /// List an event's classes (only classes): id, source id, name, term, teachers, students, shown/hidden
    List {
        #[arg(long)]
        event: String,
    },
    /// Remove classes from the event; the next sync brings them back (use hide to keep them out)
    Delete(ClassIdsArgs),
    /// Hide classes from parents; they stay hidden through every sync
    Hide(ClassIdsArgs),
    /// Show hidden classes again
    Unhide(ClassIdsArgs),
}

#[derive(Debug, clap::Args)]
pub struct ClassIdsArgs {
    #[arg(long)]
    pub event: String,
    /// Classes by database id or source id
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Sync now: one event, or every sync-enabled event
    Run(SyncRunArgs),
    /// Each event's sync setting, last run and next run
    Status,
    /// Past runs, newest first
    History {
        #[arg(long)]
        event: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Turn the nightly sync on
    Start(SyncSwitchArgs),
    /// Turn the nightly sync off
    Stop(SyncSwitchArgs),
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct SyncTarget {
    /// One event
    #[arg(long)]
    pub event: Option<String>,
    /// Every event (for run: every sync-enabled event)
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, clap::Args)]
pub struct SyncRunArgs {
    #[command(flatten)]
    pub target: SyncTarget,
    /// Show what would change, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Allow deactivating more than [safety] permits (a new school year)
    #[arg(long)]
    pub allow_mass_deactivation: bool,
    /// Read the whole source, even where it could continue from its last run
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, clap::Args)]
pub struct SyncSwitchArgs {
    #[command(flatten)]
    pub target: SyncTarget,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Check once whether a run is owed, run it if so, and exit (for cron or testing)
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, clap::Args)]
pub struct FeesArgs {
    /// Yearly fee per school in dollars (default: [fees] per_school, or 230)
    #[arg(long, value_name = "DOLLARS")]
    pub per_school: Option<u32>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Run only this event's job (repeatable); all jobs when absent
    #[arg(long, value_name = "NAME")]
    pub event: Vec<String>,

    /// Show what would change, and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How to treat contacts the roster already has from another source
    #[arg(long, value_enum, value_name = "POLICY")]
    pub dedupe: Option<DedupePolicy>,

    /// Allow deactivating more than [safety] permits (a new school year)
    #[arg(long)]
    pub allow_mass_deactivation: bool,

    /// Read the whole source, even where it could continue from its last run
    #[arg(long)]
    pub full: bool,
}
