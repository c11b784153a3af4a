//! Which inputs of one ingest belong together: CAPE/Cuckoo run folders.
//!
//! A sandbox run leaves one folder: CAPE's analysis folder (`reports/lite.json` or
//! `report.json`, `files.json`, `evtx/`, `sysmon/`, screenshots, dumps, …), sometimes inside a
//! wrapper of the tool that fetched it (Assemblyline's `<sha256>/Report/` next to its
//! `Results/result.json`). Everything in that folder is the one detonation of the report's
//! target, so ingest takes it as one unit: the Sysmon logs in it are the target's, and its
//! other files are the sandbox's artefacts rather than damaged logs.
//!
//! A report is recognised by content (`sandscope_cape::looks_like_report_file`); the folder by
//! the layout around it: the report sits in a `reports` folder, whose parent is the analysis
//! folder. From there the run extends up to the folder the user named, as long as no other
//! report lies in it, so `ingest runs/` takes each run folder apart and `ingest runs/<one>/`
//! takes the wrapper too.

use crate::IngestError;
use std::path::{Path, PathBuf};

/// Inputs that make one detonation: one sample, one report per sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detonation {
    /// The files, in the order they were found.
    pub files: Vec<PathBuf>,
    /// The CAPE/Cuckoo run folders among them: a file in one that holds no Sysmon events is
    /// one of the sandbox's artefacts, listed and passed over, not a failed input.
    pub run_folders: Vec<PathBuf>,
}

impl Detonation {
    /// A single input, or inputs the caller declares to be one detonation.
    pub fn of_files(files: &[PathBuf]) -> Self {
        Detonation {
            files: files.to_vec(),
            run_folders: Vec::new(),
        }
    }

    /// How to name this detonation to the user: its run folder, else its files.
    pub fn name(&self) -> String {
        match self.run_folders.as_slice() {
            [one] => one.display().to_string(),
            _ => self
                .files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// `file` as the user should read it: relative to its run folder when it lies in one.
    pub fn shown(&self, file: &Path) -> String {
        self.run_folders
            .iter()
            .find_map(|run| file.strip_prefix(run).ok())
            .filter(|rel| !rel.as_os_str().is_empty())
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// Whether `file` lies in one of this detonation's run folders.
    pub fn in_run_folder(&self, file: &Path) -> bool {
        self.run_folders.iter().any(|run| file.starts_with(run))
    }
}

/// The analysis folder of a report at `<analysis>/reports/<name>`, else `None` (a report
/// outside CAPE's layout is taken on its own).
pub fn analysis_folder(report: &Path) -> Option<&Path> {
    let reports = report.parent()?;
    let name = reports.file_name()?.to_str()?;
    if !name.eq_ignore_ascii_case("reports") {
        return None;
    }
    reports.parent().filter(|p| !p.as_os_str().is_empty())
}

/// Group the files under `paths` (directories walked recursively, sorted) into detonations.
/// With `one_sample` (the caller named the sample), every file is one detonation; else each
/// run folder is one and every other file is one on its own.
pub fn plan(paths: &[PathBuf], one_sample: bool) -> Result<Vec<Detonation>, IngestError> {
    // (file, the directory input it was found under)
    let mut files: Vec<(PathBuf, Option<&Path>)> = Vec::new();
    for path in paths {
        if path.is_dir() {
            let walked = sandscope_read::walk(path).map_err(|source| IngestError::Io {
                path: path.clone(),
                source,
            })?;
            files.extend(walked.into_iter().map(|f| (f, Some(path.as_path()))));
        } else {
            files.push((path.clone(), None));
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|(f, _)| seen.insert(f.clone()));

    let reports: Vec<usize> = (0..files.len())
        .filter(|&i| sandscope_cape::looks_like_report_file(&files[i].0))
        .collect();
    let runs = run_extents(&files, &reports);

    // Each file goes to the innermost run folder holding it.
    let run_of = |file: &Path| -> Option<usize> {
        runs.iter()
            .enumerate()
            .filter(|(_, run)| file.starts_with(run))
            .max_by_key(|(_, run)| run.components().count())
            .map(|(i, _)| i)
    };

    if one_sample {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        return Ok(vec![Detonation {
            files: files.into_iter().map(|(f, _)| f).collect(),
            run_folders: runs,
        }]);
    }
    let mut out: Vec<Detonation> = Vec::new();
    let mut slot_of_run: Vec<Option<usize>> = vec![None; runs.len()];
    for (file, _) in files {
        match run_of(&file) {
            Some(run) => match slot_of_run[run] {
                Some(slot) => out[slot].files.push(file),
                None => {
                    slot_of_run[run] = Some(out.len());
                    out.push(Detonation {
                        files: vec![file],
                        run_folders: vec![runs[run].clone()],
                    });
                }
            },
            None => out.push(Detonation::of_files(&[file])),
        }
    }
    Ok(out)
}

/// The run folder of each analysis folder among `reports`: the analysis folder, widened up to
/// the directory input it was found under while no report of another run lies inside.
fn run_extents(files: &[(PathBuf, Option<&Path>)], reports: &[usize]) -> Vec<PathBuf> {
    let mut runs: Vec<(PathBuf, Option<&Path>)> = Vec::new();
    for &r in reports {
        let (file, root) = &files[r];
        if let Some(analysis) = analysis_folder(file)
            && !runs.iter().any(|(a, _)| a == analysis)
        {
            runs.push((analysis.to_path_buf(), *root));
        }
    }
    let report_files: Vec<&Path> = reports.iter().map(|&r| files[r].0.as_path()).collect();
    runs.iter()
        .map(|(analysis, root)| {
            let mut extent = analysis.clone();
            let Some(root) = root else {
                return extent;
            };
            while extent.as_path() != *root {
                let Some(parent) = extent.parent() else {
                    break;
                };
                let other_run_inside = report_files
                    .iter()
                    .any(|r| r.starts_with(parent) && !r.starts_with(analysis));
                if !parent.starts_with(root) || other_run_inside {
                    break;
                }
                extent = parent.to_path_buf();
            }
            extent
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analysis_folder_is_the_parent_of_reports() {
        assert_eq!(
            analysis_folder(Path::new("runs/17/reports/report.json")),
            Some(Path::new("runs/17"))
        );
        assert_eq!(
            analysis_folder(Path::new("x/Report/Reports/lite.json.gz")),
            Some(Path::new("x/Report"))
        );
        assert_eq!(analysis_folder(Path::new("downloads/lite.json")), None);
        assert_eq!(analysis_folder(Path::new("reports/lite.json")), None);
    }
}
