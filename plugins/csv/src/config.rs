//! The source's table from `importer.toml`, checked so that every mistake names its key.

use std::fmt;
use std::path::PathBuf;

use roster_core::PluginError;
use serde::{Deserialize, Deserializer};

/// The keys a `plugin = "csv"` source accepts (the host removes `name`, `plugin`, `dedupe`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which file layout the folder holds.
    pub format: Format,
    /// The folder with the data files, relative to the config file's folder.
    pub path: PathBuf,
    /// Overrides for the data files' names.
    #[serde(default)]
    pub files: FileNames,
    #[serde(default)]
    pub delimiter: Delimiter,
    /// The school's name; the files themselves name no school.
    pub school: Option<String>,
    /// The term every class belongs to; no term records when absent.
    pub term: Option<String>,
}

/// File names inside `path`. When a name is not given, the documented default is looked
/// for: pickAtime's `Student.txt`, … with the extensions `.txt`, `.tsv`, `.csv`; Clever
/// SFTP's `schools.csv`, `students.csv`, … (any case).
///
/// `students`, `teachers` and `enrollments` are for both formats; `classes`, `parents`
/// and `parent_students` only for pickatime; `schools`, `sections` and `staff` only for
/// clever-sftp.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNames {
    pub students: Option<PathBuf>,
    pub teachers: Option<PathBuf>,
    pub classes: Option<PathBuf>,
    pub enrollments: Option<PathBuf>,
    pub parents: Option<PathBuf>,
    pub parent_students: Option<PathBuf>,
    pub schools: Option<PathBuf>,
    pub sections: Option<PathBuf>,
    pub staff: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pickatime,
    CleverSftp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Delimiter {
    /// Decided per file from its header line.
    #[default]
    Auto,
    Tab,
    Comma,
    Semicolon,
}

impl Delimiter {
    /// The byte it names; `None` for `Auto`.
    pub fn byte(self) -> Option<u8> {
        match self {
            Delimiter::Auto => None,
            Delimiter::Tab => Some(b'\t'),
            Delimiter::Comma => Some(b','),
            Delimiter::Semicolon => Some(b';'),
        }
    }
}

pub(crate) const KEYS: &[&str] = &["format", "path", "files", "delimiter", "school", "term"];
const FILE_KEYS: &[&str] = &[
    "students",
    "teachers",
    "classes",
    "enrollments",
    "parents",
    "parent_students",
    "schools",
    "sections",
    "staff",
];

impl Config {
    /// Parse the source's table, given as TOML text.
    pub fn parse(text: &str) -> Result<Config, PluginError> {
        // Unknown keys are checked by hand first: serde's message cannot say which table
        // the key was in, and a typo is the most common config mistake.
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| config_error(&e, text))?;
        check_keys(&table, KEYS, "source config")?;
        if let Some(files) = table.get("files").and_then(|v| v.as_table()) {
            check_keys(files, FILE_KEYS, "`files`")?;
        }
        let config: Config = toml::from_str(text).map_err(|e| config_error(&e, text))?;
        config.check_values()?;
        Ok(config)
    }

    fn check_values(&self) -> Result<(), PluginError> {
        let files = &self.files;
        let misplaced: Option<(&str, &str)> = match self.format {
            Format::Pickatime => [
                ("files.schools", files.schools.is_some()),
                ("files.sections", files.sections.is_some()),
                ("files.staff", files.staff.is_some()),
            ]
            .into_iter()
            .find(|(_, set)| *set)
            .map(|(key, _)| (key, "clever-sftp")),
            Format::CleverSftp => [
                ("school", self.school.is_some()),
                ("term", self.term.is_some()),
                ("files.classes", files.classes.is_some()),
                ("files.parents", files.parents.is_some()),
                ("files.parent_students", files.parent_students.is_some()),
            ]
            .into_iter()
            .find(|(_, set)| *set)
            .map(|(key, _)| (key, "pickatime")),
        };
        if let Some((key, format)) = misplaced {
            let why = match key {
                "school" => " (Clever SFTP files name their schools in schools.csv)",
                "term" => " (Clever SFTP sections carry their terms)",
                _ => "",
            };
            return Err(PluginError::config(format!(
                "{key}: only for format = \"{format}\", not \"{}\"{why}",
                self.format
            )));
        }
        if self.path.as_os_str().is_empty() {
            return Err(PluginError::config(
                "path: must name the folder with the data files",
            ));
        }
        for (key, value) in [("school", &self.school), ("term", &self.term)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(PluginError::config(format!(
                    "{key}: must not be empty (leave the key out for the default)"
                )));
            }
        }
        Ok(())
    }
}

fn check_keys(table: &toml::Table, allowed: &[&str], what: &str) -> Result<(), PluginError> {
    match table.keys().find(|key| !allowed.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => {
            let expected: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
            Err(PluginError::config(format!(
                "unknown key `{key}` in {what}, expected one of {}",
                expected.join(", ")
            )))
        }
    }
}

/// serde's messages name the value but not the key; the key is read back from the line
/// the error points at.
fn config_error(error: &toml::de::Error, text: &str) -> PluginError {
    let message = error
        .message()
        .trim()
        .replace("missing field", "missing key");
    let key = error.span().and_then(|span| key_at(text, span.start));
    match key {
        Some(key) if !message.starts_with(&format!("{key}:")) => {
            PluginError::config(format!("{key}: {message}"))
        }
        _ => PluginError::config(message),
    }
}

fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "pickatime" => Ok(Format::Pickatime),
            "clever-sftp" => Ok(Format::CleverSftp),
            other => Err(serde::de::Error::custom(format!(
                "format: expected \"pickatime\" or \"clever-sftp\", found {other:?}"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Delimiter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "auto" => Ok(Delimiter::Auto),
            "tab" => Ok(Delimiter::Tab),
            "comma" => Ok(Delimiter::Comma),
            "semicolon" => Ok(Delimiter::Semicolon),
            other => Err(serde::de::Error::custom(format!(
                "delimiter: expected \"tab\", \"comma\", \"semicolon\" or \"auto\", found {other:?}"
            ))),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Pickatime => "pickatime",
            Format::CleverSftp => "clever-sftp",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        let error = Config::parse(text).unwrap_err();
        assert_eq!(error.kind, roster_core::ErrorKind::Config);
        error.message
    }

    #[test]
    fn minimal_config_gets_the_defaults() {
        let config =
            Config::parse("format = \"pickatime\"\npath = \"fixtures/pickatime\"\n").unwrap();
        assert_eq!(config.format, Format::Pickatime);
        assert_eq!(config.path, PathBuf::from("fixtures/pickatime"));
        assert_eq!(config.delimiter, Delimiter::Auto);
        assert_eq!(config.files, FileNames::default());
        assert_eq!(config.school, None);
        assert_eq!(config.term, None);
    }

    #[test]
    fn full_config() {
        let config = Config::parse(
            "format = \"pickatime\"\npath = \"x\"\ndelimiter = \"semicolon\"\nschool = \"Maple\"\nterm = \"2026-27\"\n[files]\nstudents = \"kids.csv\"\nparent_students = \"links.txt\"\n",
        )
        .unwrap();
        assert_eq!(config.delimiter, Delimiter::Semicolon);
        assert_eq!(config.files.students, Some(PathBuf::from("kids.csv")));
        assert_eq!(
            config.files.parent_students,
            Some(PathBuf::from("links.txt"))
        );
        assert_eq!(config.school.as_deref(), Some("Maple"));
        assert_eq!(config.term.as_deref(), Some("2026-27"));
    }

    #[test]
    fn unknown_key_is_named() {
        let message = error("format = \"pickatime\"\npth = \"x\"\n");
        assert!(
            message.starts_with(
                "unknown key `pth` in source config, expected one of `format`, `path`"
            ),
            "{message}"
        );
    }

    #[test]
    fn unknown_file_key_is_named() {
        let message =
            error("format = \"pickatime\"\npath = \"x\"\nfiles = { studens = \"a.txt\" }\n");
        assert!(
            message.starts_with("unknown key `studens` in `files`"),
            "{message}"
        );
    }

    #[test]
    fn bad_format_is_named() {
        assert_eq!(
            error("format = \"x\"\npath = \"p\"\n"),
            "format: expected \"pickatime\" or \"clever-sftp\", found \"x\""
        );
    }

    #[test]
    fn bad_delimiter_is_named() {
        let message = error("format = \"pickatime\"\npath = \"p\"\ndelimiter = \"pipe\"\n");
        assert!(message.starts_with("delimiter: expected"), "{message}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let message = error("format = \"pickatime\"\npath = 3\n");
        assert!(message.starts_with("path: "), "{message}");
    }

    #[test]
    fn missing_key_is_named() {
        let message = error("format = \"pickatime\"\n");
        assert!(message.contains("missing key `path`"), "{message}");
    }

    #[test]
    fn keys_of_the_other_format_are_refused() {
        assert_eq!(
            error("format = \"clever-sftp\"\npath = \"p\"\nschool = \"Maple\"\n"),
            "school: only for format = \"pickatime\", not \"clever-sftp\" (Clever SFTP files name their schools in schools.csv)"
        );
        assert_eq!(
            error("format = \"clever-sftp\"\npath = \"p\"\n[files]\nclasses = \"c.csv\"\n"),
            "files.classes: only for format = \"pickatime\", not \"clever-sftp\""
        );
        assert_eq!(
            error("format = \"pickatime\"\npath = \"p\"\n[files]\nsections = \"s.csv\"\n"),
            "files.sections: only for format = \"clever-sftp\", not \"pickatime\""
        );
        let config = Config::parse(
            "format = \"clever-sftp\"\npath = \"p\"\n[files]\nsections = \"classes.csv\"\nstaff = \"admins.csv\"\n",
        )
        .unwrap();
        assert_eq!(config.files.sections, Some(PathBuf::from("classes.csv")));
        assert_eq!(config.files.staff, Some(PathBuf::from("admins.csv")));
    }

    #[test]
    fn empty_school_is_refused() {
        let message = error("format = \"pickatime\"\npath = \"p\"\nschool = \" \"\n");
        assert!(message.starts_with("school: "), "{message}");
    }
}
