//! The I/O edge: read run records from a JSON file, save a rendered [`Report`] to a directory.

use std::path::{Path, PathBuf};

use crate::{
    error::{Error, Result},
    record::RunRecords,
    Report,
};

/// Reads `{"experiment": {...}, "cells": [...]}` from a JSON file.
///
/// # Errors
/// [`Error::Read`] when the file cannot be read; [`Error::Parse`] naming the line, column and
/// field path when it is not valid records JSON (unknown fields are errors too).
pub fn read_records(path: &Path) -> Result<RunRecords> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        Error::Parse {
            path: path.to_owned(),
            line: inner.line(),
            column: inner.column(),
            message: if field == "." {
                inner.to_string()
            } else {
                format!("{field}: {inner}")
            },
        }
    })
}

/// Writes `<dir>/<experiment>.md` and every plot beside it (creating `dir`); returns the paths
/// written, the Markdown first. Existing files of the same names are replaced.
///
/// # Errors
/// [`Error::Write`] naming the file that could not be written.
pub fn write_report(report: &Report, experiment: &str, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    let md = dir.join(format!("{}.md", crate::file_stem(experiment)));
    let files = std::iter::once((md, report.markdown.as_str())).chain(
        report
            .plots
            .iter()
            .map(|(name, svg)| (dir.join(name), svg.as_str())),
    );
    for (path, text) in files {
        std::fs::write(&path, text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Reads run records from a JSON file, renders them and writes the report to `dir`; returns the
/// paths written (the Markdown first). What `valley report --from-json FILE --out DIR` does.
///
/// # Errors
/// As [`read_records`] and [`write_report`].
pub fn render_json_file(file: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let records = read_records(file)?;
    let report = crate::render(&records.experiment, &records.cells);
    write_report(&report, &records.experiment.name, dir)
}
