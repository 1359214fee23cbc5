//! A delimited file with a header line, read row by row, with every problem reported as
//! `file:line:column`.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use roster_core::sdk::Host;
use roster_core::PluginError;

use crate::config::Delimiter;
use crate::text::{self, Shared};

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

/// One data row: its physical line (1-based) and its trimmed fields, kept in one buffer
/// that is reused from row to row.
#[derive(Debug, Default, Clone)]
pub struct Row {
    pub line: u64,
    /// Where the row starts in the text, in bytes.
    pub offset: u64,
    /// The fields, one after the other.
    text: String,
    /// Where each field ends in `text`; it starts where the one before ends.
    ends: Vec<usize>,
}

impl Row {
    /// The field in column `index` (0-based), `""` when the row is shorter.
    pub fn get(&self, index: usize) -> &str {
        match self.ends.get(index) {
            Some(&end) => {
                let start = if index == 0 { 0 } else { self.ends[index - 1] };
                &self.text[start..end]
            }
            None => "",
        }
    }

    pub fn get_opt(&self, index: Option<usize>) -> &str {
        index.map_or("", |i| self.get(i))
    }

    /// How many fields the row has.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether every field is empty.
    fn is_blank(&self) -> bool {
        self.text.is_empty()
    }

    /// The cells of a line without quotes, split at `delimiter`, decoded and trimmed as
    /// `fill` does.
    fn fill_line(&mut self, line: &[u8], delimiter: u8) -> bool {
        self.text.clear();
        self.ends.clear();
        // Split at an ASCII byte, valid UTF-8 stays valid: one check for the whole line.
        if let (true, Ok(text)) = (delimiter.is_ascii(), std::str::from_utf8(line)) {
            let mut start = 0;
            for end in memchr::memchr_iter(delimiter, line).chain([line.len()]) {
                self.push(text::trim_cell(&text[start..end]));
                start = end + 1;
            }
            return false;
        }
        let mut latin1 = false;
        for cell in line.split(|&b| b == delimiter) {
            let (text, fallback) = text::decode_field(cell);
            latin1 |= fallback;
            self.push(text::trim_cell(&text));
        }
        latin1
    }

    /// The record's cells, decoded and trimmed; `true` when one had to be read as
    /// Windows-1252.
    fn fill(&mut self, record: &csv::ByteRecord) -> bool {
        self.text.clear();
        self.ends.clear();
        let mut latin1 = false;
        for bytes in record.iter() {
            let (text, fallback) = text::decode_field(bytes);
            latin1 |= fallback;
            self.push(text::trim_cell(&text));
        }
        latin1
    }

    fn push(&mut self, field: &str) {
        self.text.push_str(field);
        self.ends.push(self.text.len());
    }
}

/// Rows read again from a text in memory (the one a [`Table`] read them from before), by
/// where they start.
pub struct RowsAt<T> {
    reader: csv::Reader<io::Cursor<T>>,
    record: csv::ByteRecord,
}

impl<T: AsRef<[u8]>> RowsAt<T> {
    pub fn new(text: T, delimiter: u8) -> Self {
        RowsAt {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(delimiter)
                .from_reader(io::Cursor::new(text)),
            record: csv::ByteRecord::new(),
        }
    }

    /// The row starting at byte `offset`, which is on `line`, into `row`.
    pub fn read(&mut self, offset: u64, line: u64, row: &mut Row) {
        let mut at = csv::Position::new();
        at.set_byte(offset);
        let found = self.reader.seek(at).is_ok()
            && self
                .reader
                .read_byte_record(&mut self.record)
                .unwrap_or(false);
        if !found {
            self.record.clear();
        }
        row.line = line;
        row.offset = offset;
        row.fill(&self.record);
    }
}

/// A table's rows read a few ahead of the one in use, each with what `look` made of it
/// when it was read: a reader that looks every row up in an index of millions asks for
/// that row's slot ahead (`IdTable::prefetch`), so that the cache misses of several
/// rows overlap instead of coming one after another. An error is reported once the rows
/// before it are used, as reading one row at a time would.
pub struct RowsAhead<T> {
    rows: VecDeque<(Row, T)>,
    spare: Vec<Row>,
    /// The end of the table, or the error of the row after the last one read.
    stopped: Option<Result<(), PluginError>>,
}

impl<T> Default for RowsAhead<T> {
    fn default() -> Self {
        RowsAhead {
            rows: VecDeque::new(),
            spare: Vec::new(),
            stopped: None,
        }
    }
}

impl<T> RowsAhead<T> {
    /// How many rows are read ahead of the one in use.
    const AHEAD: usize = 16;

    /// The next row of `table` and what `look` made of it; `None` at the end.
    pub fn next(
        &mut self,
        table: &mut Table,
        mut look: impl FnMut(&Row) -> T,
    ) -> Result<Option<(Row, T)>, PluginError> {
        while self.stopped.is_none() && self.rows.len() < Self::AHEAD {
            let mut row = self.spare.pop().unwrap_or_default();
            match table.read_row(&mut row) {
                Ok(true) => {
                    let looked = look(&row);
                    self.rows.push_back((row, looked));
                }
                Ok(false) => self.stopped = Some(Ok(())),
                Err(error) => self.stopped = Some(Err(error)),
            }
        }
        match self.rows.pop_front() {
            Some(read) => Ok(Some(read)),
            None => self.stopped.take().unwrap_or(Ok(())).map(|()| None),
        }
    }

    /// Gives a row's buffers back, for a row read later.
    pub fn done_with(&mut self, row: Row) {
        self.spare.push(row);
    }
}

/// The rows of a text split line by line, from where a [`Table`] was, for scans of a
/// few cells of each.
pub struct Scanner {
    text: Shared,
    at: usize,
    delimiter: u8,
}

impl Scanner {
    /// Calls `each` with the cells in `columns` of every line, decoded and trimmed as a
    /// row's are (`""` where a line is short of one), without reading the rows: for a
    /// continuing run that looks for a few keys among millions of rows.
    pub fn scan<const N: usize>(&self, columns: [usize; N], mut each: impl FnMut([&str; N])) {
        let text = &self.text.as_ref()[self.at..];
        // Checked once, the whole text is UTF-8 in every piece cut at an ASCII byte (a
        // newline, the delimiter): its cells need no check of their own, which was a
        // third of a scan of nyc's Parent file. A text with a field in another encoding
        // (`decode_field`) is checked a cell at a time, as rows are.
        if let Ok(text) = std::str::from_utf8(text) {
            for line in lines(text.as_bytes()) {
                let line = &text[line];
                let cells = columns.map(|column| {
                    cell_span(line.as_bytes(), self.delimiter, column)
                        .map_or("", |span| text::trim_cell(&line[span]))
                });
                each(cells);
            }
            return;
        }
        for line in lines(text) {
            let line = &text[line];
            let cells = columns.map(|column| {
                cell_of(line, self.delimiter, column)
                    .map_or(std::borrow::Cow::Borrowed(""), |cell| {
                        text::decode_field(cell).0
                    })
            });
            each(std::array::from_fn(|i| text::trim_cell(&cells[i])));
        }
    }
}

/// Where each line of `text` lies, without its `\n` (a last line may lack one).
fn lines(text: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        (at < text.len()).then(|| {
            let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |end| at + end);
            let line = at..end;
            at = end + 1;
            line
        })
    })
}

/// Cell `column` of `line` (split at `delimiter`, undecoded and untrimmed); `None` when
/// the line is short of it.
fn cell_of(line: &[u8], delimiter: u8, column: usize) -> Option<&[u8]> {
    cell_span(line, delimiter, column).map(|span| &line[span])
}

/// Where [`cell_of`]'s cell lies in `line`.
fn cell_span(line: &[u8], delimiter: u8, column: usize) -> Option<std::ops::Range<usize>> {
    let start = match column {
        0 => 0,
        _ => memchr::memchr_iter(delimiter, line).nth(column - 1)? + 1,
    };
    let rest = &line[start..];
    Some(start..start + memchr::memchr(delimiter, rest).unwrap_or(rest.len()))
}

pub struct Table {
    pub file: DataFile,
    reader: Source,
    /// Where the [`Guard`] stopped the text, if it did.
    stopped: Stopped,
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
        Table::from_text(file, text, host, repeatable)
    }

    /// `open`, for a text already opened (or read into memory).
    pub fn from_text(
        file: &DataFile,
        text: text::TextFile,
        host: &Host,
        repeatable: &[&str],
    ) -> Result<Table, PluginError> {
        host.debug(&format!(
            "{}: {:?}, delimiter {:?}",
            file.shown, text.encoding, text.delimiter as char
        ));
        let stopped = Stopped::default();
        let reader = match text.whole {
            // Without a quote, a record is a line and a cell what lies between two
            // delimiters: the CSV reader would split it the same, only slower.
            Some(whole) if memchr::memchr(b'"', whole.as_ref()).is_none() => Source::Lines(Lines {
                text: whole,
                at: 0,
                line: 1,
                delimiter: text.delimiter,
            }),
            _ => Source::Csv(
                csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .delimiter(text.delimiter)
                    .from_reader(Guard::new(text.reader, text.delimiter, stopped.clone())),
            ),
        };
        let mut table = Table {
            file: file.clone(),
            reader,
            stopped,
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
        let mut row = Row::default();
        if table.next_fields(&mut row)? {
            table.header_line = row.line;
            table.header = (0..row.len())
                .map(|i| row.get(i).trim_start_matches('\u{feff}').trim().to_string())
                .collect();
        }
        table.check_duplicate_columns(repeatable)?;
        Ok(table)
    }

    /// How many rows to size an index for: the lines of a text split line by line (a
    /// continuing run's), else none known. Counted when asked: a file opened twice is
    /// indexed once.
    pub fn rows_hint(&self) -> usize {
        match &self.reader {
            Source::Lines(lines) => memchr::memchr_iter(b'\n', lines.text.as_ref()).count(),
            Source::Csv(_) => 0,
        }
    }

    #[cfg(test)]
    fn reader_is_lines(&self) -> bool {
        matches!(self.reader, Source::Lines(_))
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
        let mut row = Row::default();
        Ok(self.read_row(&mut row)?.then_some(row))
    }

    /// The next data row read into `row` (its buffers reused), `false` at the end of the
    /// file; blank lines (and rows of empty cells) are skipped.
    pub fn read_row(&mut self, row: &mut Row) -> Result<bool, PluginError> {
        if !self.next_fields(row)? {
            return Ok(false);
        }
        let line = row.line;
        let width = self.header.len();
        if row.len() < width && !self.short_rows_ok {
            return Err(PluginError::input(format!(
                "the row has {} fields but the header has {width}",
                row.len()
            ))
            .at(format!("{}:{line}", self.file.shown))
            .with_hint("every row needs a cell (possibly empty) for every column of the header"));
        }
        if let Some(extra) = (width..row.len()).find(|&i| !row.get(i).is_empty()) {
            return Err(PluginError::input(format!(
                "the row has {} fields but the header has {width}: `{}` has no column",
                row.len(),
                row.get(extra)
            ))
            .at(self.at(line, extra)));
        }
        if !self.unnamed_warned && !self.quiet {
            if let Some(i) = (0..width.min(row.len()))
                .find(|&i| self.header[i].is_empty() && !row.get(i).is_empty())
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
        Ok(true)
    }

    /// The next data row whose cell in `column` `wanted` accepts, read and checked as
    /// [`Table::read_row`] reads them; rows before it are counted, and only read as far as
    /// that cell where the text is split line by line. For a continuing run, whose other
    /// rows the last run read and checked: an empty cell is always wanted, so that a row
    /// missing its key is read and refused.
    pub fn read_row_where(
        &mut self,
        row: &mut Row,
        column: usize,
        mut wanted: impl FnMut(&str) -> bool,
    ) -> Result<bool, PluginError> {
        loop {
            self.skim([column], |_, [cell]| !wanted(cell));
            if !self.read_row(row)? {
                return Ok(false);
            }
            let cell = row.get(column);
            if cell.is_empty() || wanted(cell) {
                return Ok(true);
            }
        }
    }

    /// Steps over the lines that `each` takes without their being read whole. `each` is
    /// given a line's number and its cells in `columns` (trimmed as a row's are) and
    /// returns `false` for a line to read whole, which the next [`Table::read_row`] then
    /// reads. Stops too at a line it cannot tell that of without reading it whole: a
    /// blank or short one, a cell not UTF-8, an empty first cell. Only where the text is
    /// split line by line; elsewhere every row is read whole. For a continuing run, whose
    /// rows that did not change the last run read and checked.
    pub fn skim<const N: usize>(
        &mut self,
        columns: [usize; N],
        mut each: impl FnMut(u64, [&str; N]) -> bool,
    ) {
        if let Source::Lines(lines) = &mut self.reader {
            self.rows += lines.skim(columns, &mut each);
        }
    }

    /// The rows from here on, to [`Scanner::scan`]; `None` for a text the CSV reader
    /// reads (one with a quote), which cannot be split line by line.
    pub fn scanner(&self) -> Option<Scanner> {
        match &self.reader {
            Source::Lines(lines) if lines.delimiter.is_ascii() => Some(Scanner {
                text: lines.text.clone(),
                at: lines.at,
                delimiter: lines.delimiter,
            }),
            _ => None,
        }
    }

    /// The next line that is not blank, into `row`; `false` at the end of the file.
    fn next_fields(&mut self, row: &mut Row) -> Result<bool, PluginError> {
        loop {
            let latin1 = match &mut self.reader {
                Source::Lines(lines) => match lines.next(row) {
                    Ok(Some(latin1)) => latin1,
                    Ok(None) => return Ok(false),
                    Err(stop) => return Err(self.stopped_at(stop)),
                },
                Source::Csv(reader) => {
                    let more = reader.read_byte_record(&mut self.record).map_err(|e| {
                        if let Some(stop) = self.stopped.lock().unwrap().clone() {
                            return stop;
                        }
                        let line = e.position().map_or(0, |p| p.line());
                        Stop {
                            line,
                            column: 0,
                            message: format!("cannot read the file: {e}"),
                            hint: None,
                        }
                    });
                    let more = match more {
                        Ok(more) => more,
                        Err(stop) => return Err(self.stopped_at(stop)),
                    };
                    if !more {
                        return Ok(false);
                    }
                    // The reader's own record position is where it started looking,
                    // before any blank lines it skipped; counting back from the end is
                    // exact, as the text always ends records with `\n` and any other `\n`
                    // is inside a quoted field.
                    let inside = self
                        .record
                        .as_slice()
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count() as u64;
                    row.offset = self.record.position().map_or(0, |p| p.byte());
                    row.line = reader.position().line().saturating_sub(1 + inside);
                    row.fill(&self.record)
                }
            };
            if latin1 && !self.latin1_warned && !self.quiet {
                self.latin1_warned = true;
                self.host.warn(&format!(
                    "{}:{}: the file is not valid UTF-8; reading it as Windows-1252 (Latin-1)",
                    self.file.shown, row.line
                ));
            }
            if row.is_blank() {
                continue;
            }
            return Ok(true);
        }
    }

    /// The error for where the text stopped: `file:line:column`, or `file:line` for a
    /// failure the reader reports without a column.
    fn stopped_at(&self, stop: Stop) -> PluginError {
        let at = match stop.column {
            0 => format!("{}:{}", self.file.shown, stop.line),
            column => format!("{}:{}:{column}", self.file.shown, stop.line),
        };
        let error = PluginError::input(stop.message).at(at);
        match stop.hint {
            Some(hint) => error.with_hint(hint),
            None => error,
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

pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || (!a.is_ascii() && a.to_lowercase() == b.to_lowercase())
}

/// The longest cell a data file may have. No roster value comes near it; a longer one is
/// a broken export, and refusing it early keeps memory bounded whatever the file holds.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// The most cells a line may have (the wide enrollment layout needs a few dozen).
pub const MAX_FIELDS: usize = 4096;

/// Where a table's rows come from.
enum Source {
    /// The CSV reader, behind a [`Guard`].
    Csv(csv::Reader<Guard<Box<dyn Read + Send>>>),
    /// A text in memory without quotes, split line by line.
    Lines(Lines),
}

/// A text in memory without a quote in it: each line a record, each cell what lies
/// between two delimiters, the same limits as a [`Guard`]'s.
struct Lines {
    text: Shared,
    /// Where the next line starts, and its number.
    at: usize,
    line: u64,
    delimiter: u8,
}

impl Lines {
    /// The next line into `row` (whether a cell had to be read as Windows-1252); `None`
    /// at the end. An empty line is no record, as to the CSV reader.
    fn next(&mut self, row: &mut Row) -> Result<Option<bool>, Stop> {
        let text = self.text.as_ref();
        loop {
            if self.at >= text.len() {
                return Ok(None);
            }
            let rest = &text[self.at..];
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let line = &rest[..end];
            row.offset = self.at as u64;
            row.line = self.line;
            self.at += end + 1;
            self.line += 1;
            if line.is_empty() {
                continue;
            }
            if line.len() > MAX_FIELD_BYTES || line.len() >= MAX_FIELDS {
                self.check_limits(line, row.line)?;
            }
            return Ok(Some(row.fill_line(line, self.delimiter)));
        }
    }

    /// [`Table::skim`]'s steps (and [`Table::read_row_where`]'s, over the lines whose
    /// key it does not want): how many lines it stepped over.
    fn skim<const N: usize>(
        &mut self,
        columns: [usize; N],
        each: &mut impl FnMut(u64, [&str; N]) -> bool,
    ) -> u64 {
        if !self.delimiter.is_ascii() {
            return 0;
        }
        let text = self.text.as_ref();
        let mut passed = 0;
        while self.at < text.len() {
            let rest = &text[self.at..];
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let line = &rest[..end];
            let mut cells = [""; N];
            for (cell, &column) in cells.iter_mut().zip(&columns) {
                match cell_of(line, self.delimiter, column).map(std::str::from_utf8) {
                    Some(Ok(text)) => *cell = text::trim_cell(text),
                    _ => return passed,
                }
            }
            if cells[0].is_empty() || !each(self.line, cells) {
                break;
            }
            self.at += end + 1;
            self.line += 1;
            passed += 1;
        }
        passed
    }

    /// A [`Guard`]'s stops, in the order it meets them: a cell past [`MAX_FIELD_BYTES`]
    /// at its last byte too many, a line past [`MAX_FIELDS`] cells at the delimiter that
    /// starts one more.
    fn check_limits(&self, line: &[u8], number: u64) -> Result<(), Stop> {
        let mut cells = line.split(|&b| b == self.delimiter).peekable();
        let mut column = 0;
        while let Some(cell) = cells.next() {
            if cell.len() > MAX_FIELD_BYTES {
                return Err(Stop {
                    line: number,
                    column: column + 1,
                    message: format!(
                        "the cell is longer than {MAX_FIELD_BYTES} bytes, more than any roster value"
                    ),
                    hint: Some(UNQUOTED_TOO_LONG.to_string()),
                });
            }
            column += 1;
            if cells.peek().is_some() && column >= MAX_FIELDS {
                return Err(Stop {
                    line: number,
                    column: column + 1,
                    message: format!("the line has more than {MAX_FIELDS} cells"),
                    hint: None,
                });
            }
        }
        Ok(())
    }
}

const UNQUOTED_TOO_LONG: &str = "check that this is the right file, exported as text";

/// Why a [`Guard`] stopped the text, and where (1-based line and column).
#[derive(Debug, Clone)]
struct Stop {
    line: u64,
    column: usize,
    message: String,
    hint: Option<String>,
}

type Stopped = Arc<Mutex<Option<Stop>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: the end of the quotes, or the first of `""`.
    QuoteInQuoted,
}

/// Watches the text on its way to the CSV reader, splitting it by the same rules (a `"`
/// opens quotes only at the start of a cell; `""` inside quotes is one quote), and stops
/// it with a located error when
/// - a quote is still open at the end of the file: the CSV reader would quietly read
///   every later line into that one cell — rows lost without a word when it is the last
///   column, since the field count still matches;
/// - a cell grows past [`MAX_FIELD_BYTES`], or a line past [`MAX_FIELDS`] cells.
///
/// The bytes before the offending one are handed over first, so rows that precede it are
/// read (and checked) as usual; the read after that fails, and [`Table`] reports the stop.
struct Guard<R> {
    inner: R,
    delimiter: u8,
    state: Quoting,
    /// The line the next byte is on.
    line: u64,
    /// The current cell: its 0-based column, the line it started on, its length so far.
    field: usize,
    field_line: u64,
    field_len: usize,
    stopped: Stopped,
}

impl<R> Guard<R> {
    fn new(inner: R, delimiter: u8, stopped: Stopped) -> Self {
        Guard {
            inner,
            delimiter,
            state: Quoting::FieldStart,
            line: 1,
            field: 0,
            field_line: 1,
            field_len: 0,
            stopped,
        }
    }

    /// Takes one byte; `Err` with the reason when the text must stop at it.
    fn step(&mut self, byte: u8) -> Result<(), Stop> {
        use Quoting::*;
        let delimiter = byte == self.delimiter;
        match (self.state, byte) {
            (FieldStart, b'"') => {
                self.field_line = self.line;
                self.field_len = 0;
                self.state = Quoted;
            }
            (FieldStart | Unquoted | QuoteInQuoted, b'\n') => {
                self.line += 1;
                self.field = 0;
                self.state = FieldStart;
            }
            (FieldStart | Unquoted | QuoteInQuoted, _) if delimiter => {
                self.field += 1;
                self.state = FieldStart;
                if self.field >= MAX_FIELDS {
                    return Err(self.stop(
                        self.line,
                        format!("the line has more than {MAX_FIELDS} cells"),
                        None,
                    ));
                }
            }
            (FieldStart, _) => {
                self.field_line = self.line;
                self.field_len = 1;
                self.state = Unquoted;
            }
            (Quoted, b'"') => self.state = QuoteInQuoted,
            (QuoteInQuoted, b'"') => {
                self.field_len += 1;
                self.state = Quoted;
            }
            (Quoted, _) | (Unquoted, _) | (QuoteInQuoted, _) => {
                if byte == b'\n' {
                    self.line += 1;
                }
                self.field_len += 1;
                if self.state == QuoteInQuoted {
                    self.state = Unquoted;
                }
            }
        }
        if self.field_len > MAX_FIELD_BYTES {
            return Err(self.stop(
                self.field_line,
                format!("the cell is longer than {MAX_FIELD_BYTES} bytes, more than any roster value"),
                Some(if self.state == Quoted {
                    "a quote that is never closed reads the rest of the file into one cell; close it, or remove it"
                } else {
                    UNQUOTED_TOO_LONG
                }),
            ));
        }
        Ok(())
    }

    fn stop(&self, line: u64, message: String, hint: Option<&str>) -> Stop {
        Stop {
            line,
            column: self.field + 1,
            message,
            hint: hint.map(str::to_string),
        }
    }

    fn fail(&mut self, stop: Stop) -> io::Error {
        let error = io::Error::new(io::ErrorKind::InvalidData, stop.message.clone());
        *self.stopped.lock().unwrap() = Some(stop);
        error
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(stop) = self.stopped.lock().unwrap().as_ref() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                stop.message.clone(),
            ));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.state == Quoting::Quoted {
            let stop = self.stop(
                self.field_line,
                "this cell opens a quote (\") that is never closed: every later line of the file would be read into it".into(),
                Some("close the quote, or remove it if the value really starts with one"),
            );
            return Err(self.fail(stop));
        }
        for (i, &byte) in buf[..n].iter().enumerate() {
            // Most bytes are ordinary ones inside a cell that is not near the limit:
            // what `step` would do with them is count them.
            if matches!(self.state, Quoting::Unquoted | Quoting::Quoted)
                && byte != b'"'
                && byte != b'\n'
                && byte != self.delimiter
                && self.field_len < MAX_FIELD_BYTES
            {
                self.field_len += 1;
                continue;
            }
            if let Err(stop) = self.step(byte) {
                let error = self.fail(stop);
                // What came before is handed over; the next read fails.
                return if i == 0 { Err(error) } else { Ok(i) };
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    fn run(text: &[u8]) -> (Vec<u8>, Option<Stop>) {
        let stopped = Stopped::default();
        let mut guard = Guard::new(text, b'\t', stopped.clone());
        let mut out = Vec::new();
        let _ = guard.read_to_end(&mut out);
        let stop = stopped.lock().unwrap().clone();
        (out, stop)
    }

    #[test]
    fn well_formed_text_passes_untouched() {
        let text = b"a\t\"b\tc\"\td\n\"x\ny\"\"z\"\t2\n\nq\"r\t\"\"\n";
        let (out, stop) = run(text);
        assert_eq!(out, text.to_vec());
        assert!(stop.is_none(), "{stop:?}");
    }

    #[test]
    fn an_unclosed_quote_is_located_where_it_opens() {
        let (_, stop) = run(b"h1\th2\nv1\t\"v2\nv3\tv4\n");
        let stop = stop.unwrap();
        assert_eq!((stop.line, stop.column), (2, 2));
    }

    #[test]
    fn long_cells_and_lines_stop_with_what_came_before_handed_over() {
        let mut text = b"h1\th2\nok\tfine\nv\t".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_FIELD_BYTES + 1));
        let (out, stop) = run(&text);
        let stop = stop.unwrap();
        assert_eq!((stop.line, stop.column), (3, 2));
        assert!(out.starts_with(b"h1\th2\nok\tfine\nv\t"));
        let wide: Vec<u8> = std::iter::repeat_n(b'\t', MAX_FIELDS).collect();
        let stop = run(&wide).1.unwrap();
        assert_eq!((stop.line, stop.column), (1, MAX_FIELDS + 1));
    }
}

#[cfg(test)]
mod lines_tests {
    use std::sync::Arc;

    use roster_core::sdk::{Host, HostHooks, Level};

    use super::*;
    use crate::text::{Encoding, TextFile};

    /// Keeps the warnings, which both ways of reading must give alike.
    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);

    impl HostHooks for Warnings {
        fn log(&self, level: Level, message: &str) {
            if level <= Level::Warn {
                self.0.lock().unwrap().push(message.to_string());
            }
        }
        fn progress(&self, _: &str, _: u64, _: Option<u64>) {}
        fn is_cancelled(&self) -> bool {
            false
        }
    }

    /// The rows (line and cells), the error the reading stopped at, the warnings.
    type Read = (Vec<(u64, Vec<String>)>, Option<String>, Vec<String>);

    /// Every row (line and cells) a table reads from `text` (which ends with `\n`, as
    /// every opened text does), then its error if it
    /// stopped at one, then its warnings; split line by line when `whole`, by the CSV
    /// reader otherwise.
    fn read(text: &[u8], whole: bool) -> Read {
        let file = DataFile {
            path: "Student.txt".into(),
            shown: "Student.txt".into(),
            name: "Student.txt".into(),
        };
        let shared = Shared::from(text.to_vec());
        let mut opened = TextFile::in_memory(shared, Encoding::Utf8, b'\t');
        if !whole {
            opened.whole = None;
        }
        let warnings = Arc::new(Warnings::default());
        let host = Host::new(warnings.clone());
        let mut rows = Vec::new();
        let error = match Table::from_text(&file, opened, &host, &[]) {
            Err(error) => Some(error.to_string()),
            Ok(mut table) => {
                assert_eq!(table.reader_is_lines(), whole);
                let mut row = Row::default();
                loop {
                    match table.read_row(&mut row) {
                        Ok(true) => {
                            let cells = (0..row.len()).map(|i| row.get(i).to_string()).collect();
                            // A row read again from where it starts is the same row.
                            let mut again = Row::default();
                            RowsAt::new(text, b'\t').read(row.offset, row.line, &mut again);
                            assert_eq!(again.text, row.text);
                            rows.push((row.line, cells));
                        }
                        Ok(false) => break None,
                        Err(error) => break Some(error.to_string()),
                    }
                }
            }
        };
        let warnings = warnings.0.lock().unwrap().clone();
        (rows, error, warnings)
    }

    #[test]
    fn a_text_without_quotes_reads_line_by_line_as_the_csv_reader_reads_it() {
        let mut long_cell = b"ID\tName\n1\tok\n2\t".to_vec();
        long_cell.extend(std::iter::repeat_n(b'x', MAX_FIELD_BYTES + 1));
        long_cell.extend_from_slice(b"\n3\tnever\n");
        let mut wide = b"ID\tName\n1\tok\n".to_vec();
        wide.extend(std::iter::repeat_n(b'\t', MAX_FIELDS));
        wide.push(b'\n');
        let mut widest_allowed = b"ID\tName\n".to_vec();
        widest_allowed.extend(std::iter::repeat_n(b'\t', MAX_FIELDS - 1));
        let texts: Vec<Vec<u8>> = vec![
            b"ID\tName\n1\tAda\n2\tBo\n".to_vec(),
            b"\n\n \t \nID\tName\n\n1\t  Ada  \n\t\t\n   \n2\tBo\t\n3\n".to_vec(),
            b"ID\tName\n1\tJos\xe9\n2\tRen\xc3\xa9e\n".to_vec(),
            b"ID\tName\n1\tAda\textra\n".to_vec(),
            b"ID\tName\t\n1\tAda\tunnamed\n".to_vec(),
            b"ID\tID\n1\t2\n".to_vec(),
            b"".to_vec(),
            b"\n\n".to_vec(),
            long_cell,
            wide,
            widest_allowed,
        ];
        for text in &texts {
            let shown = String::from_utf8_lossy(text);
            let by_lines = read(text, true);
            assert_eq!(by_lines, read(text, false), "{shown:?}");
        }
        let (rows, error, _) = read(&texts[1], true);
        assert_eq!(
            rows,
            [
                (6, vec!["1".to_string(), "Ada".to_string()]),
                (9, vec!["2".to_string(), "Bo".to_string(), String::new()]),
            ]
        );
        assert!(error.unwrap().contains("Student.txt:10"));
        let (rows, _, warnings) = read(&texts[2], true);
        assert_eq!(rows[0].1[1], "José");
        assert_eq!(rows[1].1[1], "Renée");
        assert!(warnings[0].contains("Windows-1252"), "{warnings:?}");
        let (rows, error, _) = read(&texts[8], true);
        assert_eq!(rows.len(), 1);
        assert!(error.unwrap().contains("Student.txt:3:2"));
    }

    /// Every line's cells in `columns` as a scan gives them, after the header.
    fn scanned<const N: usize>(text: &[u8], columns: [usize; N]) -> Vec<[String; N]> {
        let table = student_table(text, true);
        let mut cells = Vec::new();
        table
            .scanner()
            .expect("split line by line")
            .scan(columns, |found| cells.push(found.map(str::to_string)));
        cells
    }

    #[test]
    fn a_scan_gives_each_lines_cells_decoded_and_trimmed() {
        // All UTF-8 (checked once for the whole text), and the same lines with one cell
        // in Windows-1252 (checked a cell at a time): the same cells, blank and short
        // lines and a last line without its newline included.
        let utf8 =
            "ID\tName\tEmail\n 1 \t Ren\u{e9}e \tr@x.org\n\n2\tBo\n\t\t\n3\t\u{3a3}\t z@x.org ";
        let latin1 = [utf8.as_bytes(), b"\n4\tJos\xe9\tj@x.org\n"].concat();
        let expected = [
            ["1", "Ren\u{e9}e", "r@x.org"],
            ["", "", ""],
            ["2", "Bo", ""],
            ["", "", ""],
            ["3", "\u{3a3}", "z@x.org"],
        ]
        .map(|row| row.map(str::to_string));
        assert_eq!(scanned(utf8.as_bytes(), [0, 1, 2]), expected);
        let mut with_latin1 = expected.to_vec();
        with_latin1.push(["4", "Jos\u{e9}", "j@x.org"].map(str::to_string));
        assert_eq!(scanned(&latin1, [0, 1, 2]), with_latin1);
        // Columns in any order, and past the end of every line.
        assert_eq!(
            scanned(utf8.as_bytes(), [2, 0, 7])[0],
            ["r@x.org", "1", ""].map(str::to_string)
        );
    }

    #[test]
    fn a_text_with_a_quote_goes_through_the_csv_reader() {
        let (rows, error, _) = read(b"ID\tName\n1\t\"Ada\tB\"\n", false);
        assert_eq!(rows, [(2, vec!["1".to_string(), "Ada\tB".to_string()])]);
        assert!(error.is_none());
        let file = DataFile {
            path: "x".into(),
            shown: "x".into(),
            name: "x".into(),
        };
        let text = Shared::from(b"ID\n\"1\"\n".to_vec());
        let host = Host::new(Arc::new(Warnings::default()));
        let table = Table::from_text(
            &file,
            TextFile::in_memory(text, Encoding::Utf8, b'\t'),
            &host,
            &[],
        )
        .unwrap();
        assert!(!table.reader_is_lines());
    }

    fn student_table(text: &[u8], whole: bool) -> Table {
        let file = DataFile {
            path: "Student.txt".into(),
            shown: "Student.txt".into(),
            name: "Student.txt".into(),
        };
        let mut opened = TextFile::in_memory(Shared::from(text.to_vec()), Encoding::Utf8, b'\t');
        if !whole {
            opened.whole = None;
        }
        let host = Host::new(Arc::new(Warnings::default()));
        Table::from_text(&file, opened, &host, &[]).unwrap()
    }

    /// The rows `read_row_where` reads from `text` (line and cells) and the rows it
    /// counted, wanting ids 2 and 5 of column 1.
    fn rows_where(text: &[u8], whole: bool) -> (Vec<(u64, Vec<String>)>, u64) {
        let mut table = student_table(text, whole);
        let mut row = Row::default();
        let mut rows = Vec::new();
        while table
            .read_row_where(&mut row, 1, |id| id == "2" || id == "5")
            .unwrap()
        {
            rows.push((
                row.line,
                (0..row.len()).map(|i| row.get(i).to_string()).collect(),
            ));
        }
        (rows, table.rows)
    }

    #[test]
    fn rows_read_where_their_key_is_wanted_are_the_rows_read_in_full() {
        let text = b"Name\tID\nAda\t1\n\n Bo \t 2 \nCy\t3\n\t\t\nDi\t\nEd\t5\nFa\t6\n";
        let (rows, counted) = rows_where(text, true);
        let cells = |line, name: &str, id: &str| (line, vec![name.to_string(), id.to_string()]);
        assert_eq!(
            rows,
            [
                cells(4, "Bo", "2"),
                // An empty key is always read, so that a row missing it is refused.
                cells(7, "Di", ""),
                cells(8, "Ed", "5"),
            ]
        );
        // Every row is counted, read or passed over; blank lines are not rows.
        assert_eq!(counted, 6);
        // Through the CSV reader (a text with quotes), the same rows.
        assert_eq!(rows_where(text, false), (rows, counted));
    }

    #[test]
    fn rows_passed_over_are_not_split_into_cells() {
        // Line 3 has a cell past the header, which `read_row` refuses: passed over by
        // its key, it is never split (a continuing run's unchanged row, checked by the
        // last run); read for its key, it is refused.
        let text = b"Name\tID\nAda\t1\nBo\t3\textra\nEd\t5\n";
        let (rows, counted) = rows_where(text, true);
        assert_eq!(rows, [(4, vec!["Ed".to_string(), "5".to_string()])]);
        assert_eq!(counted, 3);
        let mut table = student_table(text, true);
        let error = table
            .read_row_where(&mut Row::default(), 1, |id| id == "3")
            .unwrap_err();
        assert!(error.to_string().contains("Student.txt:3:3"), "{error}");
    }

    #[test]
    fn rows_read_ahead_come_in_order_and_an_error_after_the_rows_before_it() {
        let text = b"Name\tID\nAda\t1\nBo\t2\textra\nEd\t3\n";
        let mut table = student_table(text, true);
        let mut ahead = RowsAhead::default();
        let mut looked = Vec::new();
        let (row, line) = ahead
            .next(&mut table, |row| {
                looked.push(row.line);
                row.line
            })
            .unwrap()
            .unwrap();
        assert_eq!((row.get(0), line), ("Ada", 2));
        // The row after it was read (and refused) already; its error waits its turn.
        assert_eq!(looked, [2]);
        ahead.done_with(row);
        let error = ahead.next(&mut table, |_| 0).unwrap_err();
        assert!(error.to_string().contains("Student.txt:3:3"), "{error}");
        // Read to the end without an error, a table gives each row once, in order.
        let mut table = student_table(b"ID\n1\n2\n3\n", true);
        let mut ahead = RowsAhead::default();
        let mut ids = Vec::new();
        while let Some((row, id)) = ahead
            .next(&mut table, |row| row.get(0).to_string())
            .unwrap()
        {
            assert_eq!(row.get(0), id);
            ids.push(id);
            ahead.done_with(row);
        }
        assert_eq!(ids, ["1", "2", "3"]);
        assert!(ahead.next(&mut table, |_| String::new()).unwrap().is_none());
    }
}
