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
    pub fn from_yaml(text: &str, base_dir: &Path, env: &dyn Env) -> Result<Config, Vec<ConfigError>> {
        let (parsed, positions, mut errors) = source::parse::<file::FileConfig>(text);
        let Some(parsed) = parsed else {
            return Err(errors);
        };
        match validate::validate(parsed, &positions, base_dir, env) {
            Ok(mut config) if errors.is_empty() => {
                config.source_sha256 = crate::digest::sha256(text.as_bytes());
                Ok(config)
            }
            Ok(_) => Err(errors),
            Err(more) => {
                errors.extend(more);
                Err(errors)
            }
        }
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
