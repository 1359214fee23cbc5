//! A OneRoster package: a folder or a `.zip` holding `manifest.csv` and the data files,
//! and turning a file's bytes into text.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use encoding_rs::{Encoding, WINDOWS_1252};
use roster_core::PluginError;

/// Where the files come from.
pub enum Package {
    Folder {
        dir: PathBuf,
        shown: String,
        names: Vec<String>,
    },
    Zip {
        archive: Box<zip::ZipArchive<File>>,
        shown: String,
        /// File name (without folders) → entry index, for every file entry.
        names: Vec<(String, usize)>,
    },
}

/// A file's text: UTF-8, `\n` line endings, ending with `\n`.
pub struct Text {
    pub text: String,
    /// Not valid UTF-8 and without a BOM: read as Windows-1252.
    pub latin1: bool,
}

impl Package {
    /// Opens the package `path` (as the config spells it) relative to `base_dir`.
    pub fn open(path: &Path, base_dir: &Path) -> Result<Package, PluginError> {
        let full = base_dir.join(path);
        let shown = {
            let text = path.display().to_string();
            text.strip_prefix("./").map(str::to_string).unwrap_or(text)
        };
        if full.is_dir() {
            let names = std::fs::read_dir(&full)
                .map_err(|e| {
                    PluginError::input(format!("cannot list the folder: {e}")).at(shown.clone())
                })?
                .filter_map(|entry| {
                    let entry = entry.ok()?;
                    entry
                        .file_type()
                        .ok()?
                        .is_file()
                        .then(|| entry.file_name().into_string().ok())?
                })
                .collect();
            return Ok(Package::Folder {
                dir: full,
                shown,
                names,
            });
        }
        if full.is_file() {
            let file = File::open(&full).map_err(|e| {
                PluginError::input(format!("cannot open the file: {e}")).at(shown.clone())
            })?;
            let archive = zip::ZipArchive::new(file).map_err(|e| {
                PluginError::input(format!("not a readable .zip file: {e}"))
                    .at(shown.clone())
                    .with_hint(
                        "path must be a OneRoster package: a folder, or a .zip of its CSV files",
                    )
            })?;
            let mut names: Vec<(String, usize, usize)> = Vec::new();
            for index in 0..archive.len() {
                let Some(name) = archive.name_for_index(index) else {
                    continue;
                };
                if name.ends_with('/') || name.starts_with("__MACOSX/") {
                    continue;
                }
                let depth = name.matches('/').count();
                let base = name.rsplit('/').next().unwrap_or(name).to_string();
                names.push((base, index, depth));
            }
            // The spec puts every file at the root; a package zipped with its folder is
            // read too, the shallowest file of a name winning.
            names.sort_by_key(|(_, _, depth)| *depth);
            return Ok(Package::Zip {
                archive: Box::new(archive),
                shown,
                names: names.into_iter().map(|(n, i, _)| (n, i)).collect(),
            });
        }
        Err(
            PluginError::config(format!("path: {} does not exist", full.display()))
                .at("path")
                .with_hint("path must name the package folder or its .zip file"),
        )
    }

    fn names(&self) -> Vec<&str> {
        match self {
            Package::Folder { names, .. } => names.iter().map(String::as_str).collect(),
            Package::Zip { names, .. } => names.iter().map(|(n, _)| n.as_str()).collect(),
        }
    }

    /// The file's name as the package spells it: exactly `name`, or else `name` in
    /// another case.
    pub fn find(&self, name: &str) -> Option<String> {
        let names = self.names();
        names
            .iter()
            .find(|n| **n == name)
            .or_else(|| names.iter().find(|n| n.eq_ignore_ascii_case(name)))
            .map(|n| n.to_string())
    }

    /// How messages name a file of the package: `fixtures/oneroster/v1.1/users.csv`, or
    /// `package.zip/users.csv`.
    pub fn shown(&self, name: &str) -> String {
        match self {
            Package::Folder { shown, .. } | Package::Zip { shown, .. } => {
                format!("{}/{name}", shown.trim_end_matches('/'))
            }
        }
    }

    /// The text of the file `name` (as [`Package::find`] returned it).
    pub fn read(&mut self, name: &str) -> Result<Text, PluginError> {
        let shown = self.shown(name);
        let bytes = match self {
            Package::Folder { dir, .. } => std::fs::read(dir.join(name)),
            Package::Zip { archive, names, .. } => {
                let index = names
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, i)| *i)
                    .expect("names come from find");
                archive
                    .by_index(index)
                    .map_err(std::io::Error::other)
                    .and_then(|mut entry| {
                        let mut bytes = Vec::new();
                        entry.read_to_end(&mut bytes).map(|_| bytes)
                    })
            }
        }
        .map_err(|e| PluginError::input(format!("cannot read the file: {e}")).at(shown))?;
        Ok(decode(&bytes))
    }
}

/// UTF-8 with or without a BOM, UTF-16 with a BOM, else Windows-1252; line endings
/// `\r\n` and `\r` become `\n` so that line numbers count physical lines.
pub fn decode(bytes: &[u8]) -> Text {
    let (text, latin1) = match Encoding::for_bom(bytes) {
        Some((encoding, bom)) => (
            encoding
                .decode_without_bom_handling(&bytes[bom..])
                .0
                .into_owned(),
            false,
        ),
        None => match std::str::from_utf8(bytes) {
            Ok(text) => (text.to_string(), false),
            Err(_) => (
                WINDOWS_1252
                    .decode_without_bom_handling(bytes)
                    .0
                    .into_owned(),
                true,
            ),
        },
    };
    let mut text = text.replace("\r\n", "\n").replace('\r', "\n");
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    Text { text, latin1 }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decoding() {
        assert_eq!(decode(b"\xEF\xBB\xBFa,b\r\n1,2").text, "a,b\n1,2\n");
        assert_eq!(decode(b"a\rb\r").text, "a\nb\n");
        let latin = decode(b"Jos\xE9\n");
        assert_eq!(latin.text, "José\n");
        assert!(latin.latin1);
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in "a,é\r\n".encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(decode(&utf16).text, "a,é\n");
        assert_eq!(decode(b"").text, "");
    }
}
