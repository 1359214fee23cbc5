//! `manifest.csv`: the OneRoster version and, per data file, `bulk`, `delta` or `absent`.

use std::collections::BTreeMap;

use roster_core::PluginError;

use crate::table::Table;

/// How the package delivers one data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The complete set: what is not in it is gone.
    Bulk,
    /// Changed rows only, each with `status` (`active` | `tobedeleted`).
    Delta,
    /// Not supplied: says nothing about its records.
    Absent,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Bulk => "bulk",
            Mode::Delta => "delta",
            Mode::Absent => "absent",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Manifest {
    /// `oneroster.version` as written (`1.1`, `1.2`, …), if given.
    pub version: Option<String>,
    /// Data file stem (`users`) → its mode and the manifest line that says so.
    pub files: BTreeMap<String, (Mode, u64)>,
    pub shown: String,
}

impl Manifest {
    pub fn parse(table: &Table) -> Result<Manifest, PluginError> {
        let [name, value] = table.require(&["propertyName", "value"])?[..] else {
            unreachable!("one index per name")
        };
        let mut manifest = Manifest {
            version: None,
            files: BTreeMap::new(),
            shown: table.shown.clone(),
        };
        for row in &table.rows {
            let property = row.get(Some(name));
            let text = row.get(Some(value));
            if property.eq_ignore_ascii_case("oneroster.version") {
                manifest.version = (!text.is_empty()).then(|| text.to_string());
            } else if let Some(file) = property.strip_prefix("file.") {
                let mode = match text.to_ascii_lowercase().as_str() {
                    "bulk" => Mode::Bulk,
                    "delta" => Mode::Delta,
                    "absent" => Mode::Absent,
                    other => {
                        return Err(table.error(
                            row,
                            value,
                            format!(
                                "`{property}` is `{other}`: expected `bulk`, `delta` or `absent`"
                            ),
                        ))
                    }
                };
                manifest.files.insert(file.to_string(), (mode, row.line));
            }
        }
        Ok(manifest)
    }

    /// The mode of the data file `stem` (`users`); a file the manifest does not list is
    /// absent.
    pub fn mode(&self, stem: &str) -> Mode {
        self.files
            .get(stem)
            .or_else(|| {
                self.files
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(stem))
                    .map(|(_, v)| v)
            })
            .map_or(Mode::Absent, |(mode, _)| *mode)
    }

    /// `manifest.csv:line` of the file's entry.
    pub fn at(&self, stem: &str) -> String {
        match self.files.get(stem) {
            Some((_, line)) => format!("{}:{line}", self.shown),
            None => self.shown.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let table = Table::parse(
            "manifest.csv",
            "propertyName,value\nmanifest.version,1.0\noneroster.version,1.2\nfile.users,bulk\nfile.enrollments,DELTA\nfile.orgs,absent\n",
        )
        .unwrap();
        let manifest = Manifest::parse(&table).unwrap();
        assert_eq!(manifest.version.as_deref(), Some("1.2"));
        assert_eq!(manifest.mode("users"), Mode::Bulk);
        assert_eq!(manifest.mode("enrollments"), Mode::Delta);
        assert_eq!(manifest.mode("orgs"), Mode::Absent);
        assert_eq!(manifest.mode("classes"), Mode::Absent);
        assert_eq!(manifest.at("users"), "manifest.csv:4");
    }

    #[test]
    fn bad_mode_is_located() {
        let table = Table::parse("manifest.csv", "propertyName,value\nfile.users,full\n").unwrap();
        let error = Manifest::parse(&table).unwrap_err();
        assert_eq!(error.location.as_deref(), Some("manifest.csv:2:2"));
    }
}
