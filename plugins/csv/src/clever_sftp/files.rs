//! Finding the Clever SFTP files in the source folder.

use std::path::{Path, PathBuf};

use roster_core::PluginError;

use crate::config::Config;
use crate::table::DataFile;

/// The files of one run. staff.csv is optional: absent means "not supplied", which is
/// not the same as "no staff".
#[derive(Debug, Clone)]
pub struct FileSet {
    pub schools: DataFile,
    pub students: DataFile,
    pub teachers: DataFile,
    pub sections: DataFile,
    pub enrollments: DataFile,
    pub staff: Option<DataFile>,
}

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
    let find = |key: &str,
                name: &Option<PathBuf>,
                default: &str|
     -> Result<Option<DataFile>, PluginError> {
        if let Some(name) = name {
            if !folder.join(name).is_file() {
                return Err(PluginError::config(format!(
                    "files.{key}: the file {} does not exist",
                    folder.join(name).display()
                )));
            }
            return Ok(Some(data_file(&config.path, &folder, name)));
        }
        // Clever's names are lowercase; an export renamed by hand may not be.
        let found = listing
            .iter()
            .find(|n| *n == default)
            .or_else(|| listing.iter().find(|n| n.eq_ignore_ascii_case(default)));
        Ok(found
            .filter(|n| folder.join(n).is_file())
            .map(|n| data_file(&config.path, &folder, Path::new(n))))
    };
    let required = |key: &str, name: &Option<PathBuf>, default: &str| {
        find(key, name, default)?.ok_or_else(|| {
            PluginError::input(format!("required file {default} not found"))
                .at(show(&config.path, Some(Path::new(default))))
                .with_hint(format!(
                    "a Clever SFTP folder holds schools.csv, students.csv, teachers.csv, sections.csv and enrollments.csv (staff.csv optional); set `files.{key}` if it has another name"
                ))
        })
    };
    let names = &config.files;
    Ok(FileSet {
        schools: required("schools", &names.schools, "schools.csv")?,
        students: required("students", &names.students, "students.csv")?,
        teachers: required("teachers", &names.teachers, "teachers.csv")?,
        sections: required("sections", &names.sections, "sections.csv")?,
        enrollments: required("enrollments", &names.enrollments, "enrollments.csv")?,
        staff: find("staff", &names.staff, "staff.csv")?,
    })
}

fn data_file(config_path: &Path, folder: &Path, name: &Path) -> DataFile {
    DataFile {
        path: folder.join(name),
        shown: show(config_path, Some(name)),
        name: name.file_name().map_or_else(
            || name.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
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
