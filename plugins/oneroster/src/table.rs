//! One CSV file of the package, parsed into rows that remember their line, with every
//! problem reported as `file:line:column`.

use roster_core::PluginError;

pub struct Row {
    /// Physical line (1-based) the row starts on.
    pub line: u64,
    fields: Vec<String>,
}

impl Row {
    /// The trimmed field in `column`; `""` when the row is shorter or the column absent.
    pub fn get(&self, column: Option<usize>) -> &str {
        column
            .and_then(|c| self.fields.get(c))
            .map_or("", String::as_str)
    }

    /// The field, or `None` when it is blank.
    pub fn opt(&self, column: Option<usize>) -> Option<String> {
        let value = self.get(column);
        (!value.is_empty()).then(|| value.to_string())
    }
}

pub struct Table {
    /// The file as messages name it.
    pub shown: String,
    pub header: Vec<String>,
    /// The line the header is on (1 unless blank lines come first).
    pub header_line: u64,
    pub rows: Vec<Row>,
}

impl Table {
    /// Parses `text` (already decoded, `\n` line endings). Blank lines are skipped.
    pub fn parse(shown: &str, text: &str) -> Result<Table, PluginError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut header: Option<Vec<String>> = None;
        let mut header_line = 1;
        let mut rows = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            let more = reader.read_record(&mut record).map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                PluginError::input(format!("not valid CSV: {e}")).at(format!("{shown}:{line}"))
            })?;
            if !more {
                break;
            }
            // After a record the reader stands on the line after it; count back over the
            // line breaks inside quoted fields to the line the record started on.
            let inside: u64 = record.iter().map(|f| f.matches('\n').count() as u64).sum();
            let line = reader.position().line().saturating_sub(1 + inside);
            let fields: Vec<String> = record.iter().map(|f| f.trim().to_string()).collect();
            if fields.iter().all(String::is_empty) {
                continue;
            }
            match &header {
                None => {
                    header_line = line;
                    header = Some(
                        fields
                            .into_iter()
                            .map(|f| f.trim_start_matches('\u{feff}').trim().to_string())
                            .collect(),
                    )
                }
                Some(names) => {
                    if let Some(extra) =
                        (names.len()..fields.len()).find(|&i| !fields[i].is_empty())
                    {
                        return Err(PluginError::input(format!(
                            "the row has {} fields but the header has {}: `{}` has no column",
                            fields.len(),
                            names.len(),
                            fields[extra]
                        ))
                        .at(format!("{shown}:{line}:{}", extra + 1)));
                    }
                    rows.push(Row { line, fields });
                }
            }
        }
        let header = header.unwrap_or_default();
        for (i, name) in header.iter().enumerate() {
            if !name.is_empty() && header[..i].contains(name) {
                return Err(PluginError::input(format!("duplicate column `{name}`"))
                    .at(format!("{shown}:{header_line}:{}", i + 1)));
            }
        }
        Ok(Table {
            shown: shown.to_string(),
            header,
            header_line,
            rows,
        })
    }

    /// The column called `name`: the exact spelling, else another case.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name).or_else(|| {
            self.header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
        })
    }

    /// The columns `names`, or an error naming the missing ones.
    pub fn require(&self, names: &[&str]) -> Result<Vec<usize>, PluginError> {
        let missing: Vec<String> = names
            .iter()
            .filter(|n| self.column(n).is_none())
            .map(|n| format!("`{n}`"))
            .collect();
        if missing.is_empty() {
            return Ok(names.iter().filter_map(|n| self.column(n)).collect());
        }
        Err(PluginError::input(format!(
            "missing column{} {} (found: {})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            self.header.join(", ")
        ))
        .at(format!("{}:{}", self.shown, self.header_line))
        .with_hint(
            "header names are those of the OneRoster CSV binding; their order does not matter",
        ))
    }

    /// `file:line:column` of a field (`column` 0-based).
    pub fn at(&self, row: &Row, column: usize) -> String {
        format!("{}:{}:{}", self.shown, row.line, column + 1)
    }

    pub fn error(&self, row: &Row, column: usize, message: impl Into<String>) -> PluginError {
        PluginError::input(message).at(self.at(row, column))
    }

    /// Extension columns (`metadata.…`), which go into a record's attributes.
    pub fn metadata_columns(&self) -> Vec<(usize, String)> {
        self.header
            .iter()
            .enumerate()
            .filter(|(_, h)| h.starts_with("metadata."))
            .map(|(i, h)| (i, h.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_physical_lines() {
        let table = Table::parse("f.csv", "a,b\n\n1,\"x\ny\"\n2,z\n").unwrap();
        assert_eq!(table.header, ["a", "b"]);
        let lines: Vec<u64> = table.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 5]);
        assert_eq!(table.rows[0].get(Some(1)), "x\ny");
    }

    #[test]
    fn extra_field_is_located() {
        let Err(error) = Table::parse("f.csv", "a,b\n1,2,3\n") else {
            panic!("expected an error")
        };
        assert_eq!(error.location.as_deref(), Some("f.csv:2:3"));
    }

    #[test]
    fn missing_columns_are_listed() {
        let table = Table::parse("f.csv", "\u{feff}sourcedId,Name\n").unwrap();
        assert_eq!(table.column("sourcedId"), Some(0));
        assert_eq!(table.column("name"), Some(1));
        let error = table.require(&["sourcedId", "type", "title"]).unwrap_err();
        assert_eq!(
            error.message,
            "missing columns `type`, `title` (found: sourcedId, Name)"
        );
        assert_eq!(error.location.as_deref(), Some("f.csv:1"));
    }
}
