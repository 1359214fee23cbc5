//! Finding the pickAtime files in the source folder.

use std::path::{Path, PathBuf};

use roster_core::PluginError;

use crate::config::Config;
use crate::table::DataFile;

/// The files of one run. The parent files are optional: absent means "not supplied",
/// which is not the same as "no parents".
#[derive(Debug, Clone)]
pub struct FileSet {
    pub students: DataFile,
    pub teachers: DataFile,
    pub classes: DataFile,
    pub enrollments: DataFile,
    pub parents: Option<DataFile>,
    pub parent_students: Option<DataFile>,
}

const EXTENSIONS: [&str; 3] = ["txt", "tsv", "csv"];

pub fn resolve(config: &Config, base_dir: &Path) -> Result<FileSet, PluginError> {
    let folder = base_dir.join(&config.path);
    if !folder.is_dir() {
        return Err(PluginError::config(format!(
            "path: the folder {} does not exist",
            folder.display()
        )));
    }
    let listing: Vec<String> = std::fs::read_dir(&folder)
        .map_err(|e| {
            PluginError::input(format!("cannot list the folder: {e}")).at(show(&config.path, None))
        })?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    let finder = Finder {
        config_path: &config.path,
        folder: &folder,
        listing: &listing,
    };
    let names = &config.files;
    let parents = finder.optional("parents", &names.parents, "Parent")?;
    let parent_students =
        finder.optional("parent_students", &names.parent_students, "ParentStudent")?;
    if let (None, Some(links)) = (&parents, &parent_students) {
        return Err(PluginError::input(format!(
            "{} links parents to students, but there is no Parent file ({})",
            links.name,
            finder.default_names("Parent")
        ))
        .at(links.shown.clone())
        .with_hint("supply Parent.txt too, or remove the relationship file"));
    }
    Ok(FileSet {
        students: finder.required("students", &names.students, "Student")?,
        teachers: finder.required("teachers", &names.teachers, "Teacher")?,
        classes: finder.required("classes", &names.classes, "Class")?,
        enrollments: finder.required("enrollments", &names.enrollments, "Enrollment")?,
        parents,
        parent_students,
    })
}

struct Finder<'a> {
    config_path: &'a Path,
    folder: &'a Path,
    listing: &'a [String],
}

impl Finder<'_> {
    fn required(
        &self,
        key: &str,
        name: &Option<PathBuf>,
        stem: &str,
    ) -> Result<DataFile, PluginError> {
        self.optional(key, name, stem)?.ok_or_else(|| {
            PluginError::input(format!(
                "required file not found (looked for {})",
                self.default_names(stem)
            ))
            .at(show(
                self.config_path,
                Some(Path::new(&format!("{stem}.txt"))),
            ))
            .with_hint(format!(
                "set `files.{key}` in the source config if the file has another name"
            ))
        })
    }

    /// A file the config names must exist; a default name is looked for with each
    /// extension in turn, the exact spelling before another case.
    fn optional(
        &self,
        key: &str,
        name: &Option<PathBuf>,
        stem: &str,
    ) -> Result<Option<DataFile>, PluginError> {
        if let Some(name) = name {
            let path = self.folder.join(name);
            if !path.is_file() {
                return Err(PluginError::config(format!(
                    "files.{key}: the file {} does not exist",
                    path.display()
                )));
            }
            return Ok(Some(self.data_file(name)));
        }
        for extension in EXTENSIONS {
            let wanted = format!("{stem}.{extension}");
            let found = self.listing.iter().find(|n| **n == wanted).or_else(|| {
                self.listing
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(&wanted))
            });
            if let Some(found) = found {
                if self.folder.join(found).is_file() {
                    return Ok(Some(self.data_file(Path::new(found))));
                }
            }
        }
        Ok(None)
    }

    fn data_file(&self, name: &Path) -> DataFile {
        DataFile {
            path: self.folder.join(name),
            shown: show(self.config_path, Some(name)),
            name: name.file_name().map_or_else(
                || name.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    }

    fn default_names(&self, stem: &str) -> String {
        let names: Vec<String> = EXTENSIONS.iter().map(|e| format!("{stem}.{e}")).collect();
        names.join(", ")
    }
}

/// The config's own spelling of a path, without a leading `./`.
fn show(config_path: &Path, name: Option<&Path>) -> String {
    let joined = match name {
        Some(name) => config_path.join(name),
        None => config_path.to_path_buf(),
    };
    let text = joined.display().to_string();
    text.strip_prefix("./").map(str::to_string).unwrap_or(text)
}
