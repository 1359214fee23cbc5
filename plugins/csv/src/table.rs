//! A delimited file with a header line, read row by row, with every problem reported as
//! `file:line:column`.

use std::path::PathBuf;

use roster_core::sdk::Host;
use roster_core::PluginError;

use crate::config::Delimiter;
use crate::text;

/// A data file: where it is, and how it is named in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// The file to open.
    pub path: PathBuf,
    /// The path as the config spells it (`fixtures/pickatime/Student.txt`): what error
    /// locations start with.
    pub shown: String,
    /// The file name alone, for progress and one-line notices.
    pub name: String,
}

/// One data row: its physical line (1-based) and its trimmed fields.
pub struct Row {
    pub line: u64,
    pub fields: Vec<String>,
}

impl Row {
    /// The field in column `index` (0-based), `""` when the row is shorter.
    pub fn get(&self, index: usize) -> &str {
        self.fields.get(index).map_or("", String::as_str)
    }

    pub fn get_opt(&self, index: Option<usize>) -> &str {
        index.map_or("", |i| self.get(i))
    }
}

pub struct Table {
    pub file: DataFile,
    reader: csv::Reader<Box<dyn std::io::Read + Send>>,
    /// Trimmed header names; `""` for a column without one.
    pub header: Vec<String>,
    header_line: u64,
    record: csv::ByteRecord,
    host: Host,
    /// Set on a second pass over the same file, so its notices are not repeated.
    quiet: bool,
    latin1_warned: bool,
    unnamed_warned: bool,
    /// Rows of the one-row-per-student enrollment layout may stop after their last class.
    short_rows_ok: bool,
    pub rows: u64,
}

impl Table {
    /// Opens `file` and reads its header. `repeatable` names the columns that may appear
    /// more than once.
    pub fn open(
        file: &DataFile,
        delimiter: Delimiter,
        host: &Host,
        repeatable: &[&str],
    ) -> Result<Table, PluginError> {
        let text = text::open(&file.path, delimiter).map_err(|e| {
            PluginError::input(format!("cannot read the file: {e}")).at(file.shown.clone())
        })?;
        host.debug(&format!(
            "{}: {:?}, delimiter {:?}",
            file.shown, text.encoding, text.delimiter as char
        ));
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(text.delimiter)
            .from_reader(text.reader);
        let mut table = Table {
            file: file.clone(),
            reader,
            header: Vec::new(),
            header_line: 1,
            record: csv::ByteRecord::new(),
            host: host.clone(),
            quiet: false,
            latin1_warned: false,
            unnamed_warned: false,
            short_rows_ok: false,
            rows: 0,
        };
        if let Some((line, fields)) = table.next_fields()? {
            table.header_line = line;
            table.header = fields
                .into_iter()
                .map(|f| f.trim_start_matches('\u{feff}').trim().to_string())
                .collect();
        }
        table.check_duplicate_columns(repeatable)?;
        Ok(table)
    }

    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    pub fn allow_short_rows(&mut self) {
        self.short_rows_ok = true;
    }

    /// `shown:line:column`, with `index` the 0-based column.
    pub fn at(&self, line: u64, index: usize) -> String {
        format!("{}:{line}:{}", self.file.shown, index + 1)
    }

    pub fn error(&self, row: &Row, index: usize, message: impl Into<String>) -> PluginError {
        PluginError::input(message).at(self.at(row.line, index))
    }

    /// The first column called `name`, compared case-insensitively.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| same_name(h, name))
    }

    pub fn find_all(&self, name: &str) -> Vec<usize> {
        (0..self.header.len())
            .filter(|&i| same_name(&self.header[i], name))
            .collect()
    }

    /// The columns `names`, in order, or an error listing the ones missing and the ones found.
    pub fn require(&self, names: &[&str]) -> Result<Vec<usize>, PluginError> {
        let location = format!("{}:{}", self.file.shown, self.header_line);
        if self.header.iter().all(String::is_empty) {
            return Err(PluginError::input(format!(
                "the file is empty: expected a header line with {}",
                names.join(", ")
            ))
            .at(location));
        }
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| self.find(n).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(names.iter().filter_map(|n| self.find(n)).collect());
        }
        let found: Vec<&str> = self
            .header
            .iter()
            .map(String::as_str)
            .filter(|h| !h.is_empty())
            .collect();
        let listed: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
        Err(PluginError::input(format!(
            "missing column{} {} (found: {})",
            if missing.len() > 1 { "s" } else { "" },
            listed.join(", "),
            found.join(", ")
        ))
        .at(location)
        .with_hint(
            "header names must match the file format; case and surrounding spaces do not matter",
        ))
    }

    /// Named columns other than `known`: what goes into a record's `attributes`.
    pub fn other_columns(&self, known: &[&str]) -> Vec<(usize, String)> {
        self.header
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.is_empty() && !known.iter().any(|k| same_name(h, k)))
            .map(|(i, h)| (i, h.clone()))
            .collect()
    }

    /// The next data row; blank lines (and rows of empty cells) are skipped.
    pub fn next_row(&mut self) -> Result<Option<Row>, PluginError> {
        let Some((line, fields)) = self.next_fields()? else {
            return Ok(None);
        };
        let width = self.header.len();
        if fields.len() < width && !self.short_rows_ok {
            return Err(PluginError::input(format!(
                "the row has {} fields but the header has {width}",
                fields.len()
            ))
            .at(format!("{}:{line}", self.file.shown))
            .with_hint("every row needs a cell (possibly empty) for every column of the header"));
        }
        if let Some(extra) = (width..fields.len()).find(|&i| !fields[i].is_empty()) {
            return Err(PluginError::input(format!(
                "the row has {} fields but the header has {width}: `{}` has no column",
                fields.len(),
                fields[extra]
            ))
            .at(self.at(line, extra)));
        }
        if !self.unnamed_warned && !self.quiet {
            if let Some(i) = (0..width.min(fields.len()))
                .find(|&i| self.header[i].is_empty() && !fields[i].is_empty())
            {
                self.unnamed_warned = true;
                self.host.warn(&format!(
                    "{}: column {} has no header; its values are ignored",
                    self.at(line, i),
                    i + 1
                ));
            }
        }
        self.rows += 1;
        Ok(Some(Row { line, fields }))
    }

    fn next_fields(&mut self) -> Result<Option<(u64, Vec<String>)>, PluginError> {
        loop {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| {
                    let line = e.position().map_or(0, |p| p.line());
                    PluginError::input(format!("cannot read the file: {e}"))
                        .at(format!("{}:{line}", self.file.shown))
                })?;
            if !more {
                return Ok(None);
            }
            // The reader's own record position is where it started looking, before any
            // blank lines it skipped; counting back from the end is exact, as the text
            // always ends records with `\n` and any other `\n` is inside a quoted field.
            let inside = self
                .record
                .as_slice()
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            let line = self.reader.position().line().saturating_sub(1 + inside);
            let mut latin1 = false;
            let fields: Vec<String> = self
                .record
                .iter()
                .map(|bytes| {
                    let (text, fallback) = text::decode_field(bytes);
                    latin1 |= fallback;
                    text.trim().to_string()
                })
                .collect();
            if latin1 && !self.latin1_warned && !self.quiet {
                self.latin1_warned = true;
                self.host.warn(&format!(
                    "{}:{line}: the file is not valid UTF-8; reading it as Windows-1252 (Latin-1)",
                    self.file.shown
                ));
            }
            if fields.iter().all(String::is_empty) {
                continue;
            }
            return Ok(Some((line, fields)));
        }
    }

    fn check_duplicate_columns(&self, repeatable: &[&str]) -> Result<(), PluginError> {
        for (i, name) in self.header.iter().enumerate() {
            if name.is_empty() || repeatable.iter().any(|r| same_name(name, r)) {
                continue;
            }
            if let Some(first) = self.header[..i].iter().position(|h| same_name(h, name)) {
                return Err(PluginError::input(format!(
                    "duplicate column `{name}` (also column {})",
                    first + 1
                ))
                .at(self.at(self.header_line, i)));
            }
        }
        Ok(())
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || (!a.is_ascii() && a.to_lowercase() == b.to_lowercase())
}
