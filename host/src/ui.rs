//! Small pieces of user-facing text: tables on stdout and confirmations on stderr.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::CliError;

/// `println!` that does not panic when stdout is closed early (`roster … | head`).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// A plain table: a header row and left-aligned columns two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Ask before a change. `--yes` answers for scripts; without it the answer is read from
/// stdin, and anything but "y"/"yes" (including no input at all) changes nothing.
pub fn confirm(question: &str, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
    }
    let mut answer = String::new();
    let _ = stdin.lock().read_line(&mut answer);
    match answer.trim().to_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::new("not confirmed; nothing was changed")
            .with_hint("answer \"yes\", or pass --yes to confirm from a script")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_columns() {
        let text = super::table(
            &["id", "name"],
            &[
                vec!["1".into(), "Math".into()],
                vec!["10".into(), "Art".into()],
            ],
        );
        assert_eq!(text, "id  name\n1   Math\n10  Art");
    }
}
