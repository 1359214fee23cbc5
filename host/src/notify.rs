//! Telling the people responsible that a sync failed: a command and/or a webhook, each
//! given the failure summary as JSON. A notification that fails is logged, never fatal.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::config::NotifySettings;

pub fn failure(settings: &NotifySettings, summary: &serde_json::Value) {
    let mut summary = summary.clone();
    summary["contacts"] = serde_json::json!(settings.contacts);
    let body = summary.to_string();
    if let Some(command) = &settings.command {
        if let Err(error) = run_command(command, &body) {
            tracing::warn!("notify command failed: {error}");
        }
    }
    if let Some(url) = &settings.webhook {
        if let Err(error) = post(url, &body) {
            tracing::warn!("notify webhook {url} failed: {error}");
        }
    }
}

fn run_command(command: &str, body: &str) -> Result<(), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("ROSTER_SYNC_SUMMARY", body)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body.as_bytes());
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("exited with {status}"))
    }
}

fn post(url: &str, body: &str) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .map_err(|e| e.without_url().to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", response.status()))
    }
}
