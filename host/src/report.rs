//! Reports people act on: the dedupe conflict report (a terminal table plus CSV and JSON
//! files), and the CSV writer every export uses.

use std::path::{Path, PathBuf};

use crate::pipeline::dedupe::{Conflict, Party};

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) is written
/// with a leading `'`, so an exported report can be opened safely.
pub fn csv_safe(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

/// Write rows to a CSV file with every cell neutralised.
pub fn write_csv(
    path: &Path,
    headers: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut writer = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    writer
        .write_record(headers)
        .map_err(std::io::Error::other)?;
    for row in rows {
        writer
            .write_record(row.iter().map(|c| csv_safe(c)))
            .map_err(std::io::Error::other)?;
    }
    writer.flush()
}

fn party_text(party: &Party) -> String {
    let id = match party.contact_id {
        Some(id) => format!("#{id} "),
        None => String::new(),
    };
    format!(
        "{id}{}:{} {} ({})",
        party.source, party.source_id, party.name, party.role
    )
}

pub fn table(findings: &[Conflict]) -> String {
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            vec![
                f.rule.as_str().to_string(),
                f.confidence.to_string(),
                party_text(&f.incoming),
                f.existing.as_ref().map(party_text).unwrap_or_default(),
                f.reason.clone(),
                f.action.clone(),
            ]
        })
        .collect();
    crate::ui::table(
        &["rule", "conf", "incoming", "existing", "reason", "action"],
        &rows,
    )
}

const HEADERS: &[&str] = &[
    "rule",
    "confidence",
    "reason",
    "action",
    "incoming_source",
    "incoming_id",
    "incoming_role",
    "incoming_name",
    "incoming_email",
    "incoming_birth_date",
    "incoming_ids",
    "existing_contact",
    "existing_source",
    "existing_id",
    "existing_role",
    "existing_name",
    "existing_email",
    "existing_birth_date",
    "existing_ids",
];

fn party_cells(party: Option<&Party>, with_contact: bool) -> Vec<String> {
    let party = party.cloned().unwrap_or_default();
    let mut cells = Vec::new();
    if with_contact {
        cells.push(
            party
                .contact_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        );
    }
    cells.extend([
        party.source,
        party.source_id,
        party.role,
        party.name,
        party.email,
        party.birth_date,
        party.ids,
    ]);
    cells
}

/// Write the report as `<stem>.csv` and `<stem>.json` in `dir`; returns both paths.
pub fn write_findings(
    dir: &Path,
    stem: &str,
    findings: &[Conflict],
) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let csv_path = dir.join(format!("{stem}.csv"));
    let json_path = dir.join(format!("{stem}.json"));
    write_csv(
        &csv_path,
        HEADERS,
        findings.iter().map(|f| {
            let mut row = vec![
                f.rule.as_str().to_string(),
                f.confidence.to_string(),
                f.reason.clone(),
                f.action.clone(),
            ];
            row.extend(party_cells(Some(&f.incoming), false));
            row.extend(party_cells(f.existing.as_ref(), true));
            row
        }),
    )?;
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(findings).map_err(std::io::Error::other)?,
    )?;
    Ok((csv_path, json_path))
}

/// A file-name-safe form of an event name.
pub fn slug(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_cells_are_neutralised() {
        for cell in ["=1+1", "+SUM(A1)", "-2", "@cmd", "\tx", "\rx"] {
            assert!(super::csv_safe(cell).starts_with('\''), "{cell:?}");
        }
        assert_eq!(super::csv_safe("O'Brien"), "O'Brien");
        assert_eq!(
            super::csv_safe("Robert'); DROP TABLE contacts;--"),
            "Robert'); DROP TABLE contacts;--"
        );
    }

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(
            super::slug("Fall Conferences 2026!"),
            "fall-conferences-2026"
        );
    }
}
