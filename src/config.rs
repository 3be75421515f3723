//! Configuration: YAML file → serde file structs → validated, typed [`Config`].
//! Loading never stops at the first problem: every error names its key path and line.

mod file;
mod model;
mod source;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::*;
pub use source::{KeyPath, Position};

/// One problem in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub position: Option<Position>,
    pub message: String,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} problem(s) in {}", .errors.len(), .path.display())]
    Invalid { path: PathBuf, errors: Vec<ConfigError> },
}

/// Environment lookup, injectable so validation is testable without touching the process.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

// === impl Config ===

impl Config {
    /// Read, parse, validate and compile the file at `path`.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.into(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Config::from_yaml(&text, base_dir, &ProcessEnv).map_err(|errors| LoadError::Invalid {
            path: path.into(),
            errors,
        })
    }

    /// Parse and validate YAML text; relative paths resolve against `base_dir`.
    /// On failure: every problem, in file order.
    pub fn from_yaml(text: &str, base_dir: &Path, env: &dyn Env) -> Result<Config, Vec<ConfigError>> {
        let parsed = source::parse::<file::FileConfig>(text);
        let mut errors = parsed.errors;
        if let Some(file) = parsed.value {
            match validate::validate(file, &parsed.positions, base_dir, env) {
                Ok(mut config) if errors.is_empty() => {
                    config.source_sha256 = crate::digest::sha256(text.as_bytes());
                    return Ok(config);
                }
                Ok(_) => {}
                // Checked without the nodes set aside: what it says about them is no news.
                Err(more) => errors.extend(more.into_iter().filter(|e| !parsed.aside.explains(e))),
            }
        }
        // Stable: problems at one position keep the order they were found in. Those with no
        // position (about the whole file) come last.
        errors.sort_by_key(|e| e.position.map_or((usize::MAX, 0), |p| (p.line, p.column)));
        Err(errors)
    }
}

// === impl ConfigError ===

impl ConfigError {
    pub(crate) fn new(path: KeyPath, position: Option<Position>, message: String) -> Self {
        ConfigError {
            path: path.to_string(),
            position,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(
                f,
                "{} (line {}, column {}): {}",
                self.path, p.line, p.column, self.message
            ),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

// === impl ProcessEnv ===

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests;
