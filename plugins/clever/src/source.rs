//! The record source the host pulls from. The first `next_batch` fetches the whole
//! district (references between objects can only be resolved once everything is in), maps
//! it, and queues the batches; later calls hand them out.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Instant;

use roster_core::record::Record;
use roster_core::sdk::RecordSource;
use roster_core::PluginError;

use crate::client::Client;
use crate::config::Config;
use crate::fetch::fetch;
use crate::mapping;
use crate::report::Reporter;

pub struct CleverSource {
    config: Config,
    report: Reporter,
    batches: Option<VecDeque<Vec<Record>>>,
}

impl CleverSource {
    pub fn new(config: Config, report: Reporter) -> Self {
        CleverSource {
            config,
            report,
            batches: None,
        }
    }

    fn import(&self) -> Result<VecDeque<Vec<Record>>, PluginError> {
        let started = Instant::now();
        let config = &self.config;
        let report = &self.report;
        let (fetched, requests) = on_own_runtime(async {
            let client = Client::new(config, report.clone())?;
            let fetched = fetch(&client, config)
                .await
                .map_err(|error| error.into_plugin_error(&config.token_env))?;
            Ok::<_, PluginError>((fetched, client.request_count()))
        })??;
        let district = fetched
            .district
            .as_ref()
            .map(|d| {
                let id = crate::model::get(&d.id).unwrap_or_default();
                match crate::model::get(&d.name) {
                    Some(name) => format!("{name} ({id})"),
                    None => id,
                }
            })
            .unwrap_or_else(|| "(unnamed district)".into());
        report.info(&format!(
            "clever {}: {district}: fetched {} in {requests} requests, {:.1} s",
            config.api_version.as_str(),
            fetched.summary(),
            started.elapsed().as_secs_f64()
        ));
        let mut roster = mapping::map(fetched);
        roster.limit_to_schools(&config.schools)?;
        for note in &roster.notes {
            report.warn(&format!("clever: {note}"));
        }
        if config.include_contacts && !roster.contacts_complete {
            report.warn(
                "clever: contacts were not fetched; parents and relationships are left as they are",
            );
        }
        report.info(&format!(
            "clever: {} schools, {} terms, {} people, {} classes, {} enrollments, {} class-teacher links, {} relationships",
            roster.schools.len(),
            roster.terms.len(),
            roster.people.len(),
            roster.classes.len(),
            roster.enrollments.len(),
            roster.class_teachers.len(),
            roster.relationships.len()
        ));
        Ok(roster.into_batches())
    }
}

impl RecordSource for CleverSource {
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        // Checked on every call: batches are queued, but a host that asked to stop gets no
        // more of them.
        self.report.check_cancelled()?;
        if self.batches.is_none() {
            let batches = self
                .import()
                .map_err(|error| self.report.token().scrub_error(error))?;
            self.batches = Some(batches);
        }
        Ok(self.batches.as_mut().and_then(VecDeque::pop_front))
    }
}

/// Run `future` on a runtime of its own, on a thread of its own: each plugin file carries
/// its own tokio, and a fresh thread never finds itself inside some other runtime.
fn on_own_runtime<F>(future: F) -> Result<F::Output, PluginError>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("clever-fetch".into())
            .spawn_scoped(scope, || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(future))
            })
            .map_err(|error| {
                PluginError::new(
                    roster_core::ErrorKind::Other,
                    format!("cannot start the fetch thread: {error}"),
                )
            })?;
        match worker.join() {
            Ok(result) => result.map_err(|error| {
                PluginError::new(
                    roster_core::ErrorKind::Other,
                    format!("cannot start the async runtime: {error}"),
                )
            }),
            // Let the SDK's boundary report the panic as the plugin's.
            Err(payload) => std::panic::resume_unwind(payload),
        }
    })
}
