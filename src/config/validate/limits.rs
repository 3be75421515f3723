//! Validation of `limits:` (top level, and each listener's own): every value a positive
//! integer within a sane range; a listener's key overrides that one key of the top level.

use std::time::Duration;

use super::super::file::FileLimits;
use super::super::model::Limits;
use super::super::source::KeyPath;
use super::Check;

const MAX_TIMEOUT_SECONDS: u64 = 24 * 3600;

impl Check<'_> {
    /// `own` over `base`, key by key; problems are reported at `path`'s keys.
    pub(super) fn limits(&mut self, path: &KeyPath, own: Option<FileLimits>, base: &Limits) -> Limits {
        let Some(own) = own else {
            return *base;
        };
        let mut out = *base;
        let mut seconds = |key: &str, value: Option<u64>, into: &mut Duration| {
            if let Some(v) = self.bounded(&path.key(key), value, 1, MAX_TIMEOUT_SECONDS) {
                *into = Duration::from_secs(v);
            }
        };
        seconds(
            "header_read_timeout_seconds",
            own.header_read_timeout_seconds,
            &mut out.header_read_timeout,
        );
        seconds(
            "idle_timeout_seconds",
            own.idle_timeout_seconds,
            &mut out.idle_timeout,
        );
        seconds(
            "upstream_connect_timeout_seconds",
            own.upstream_connect_timeout_seconds,
            &mut out.upstream_connect_timeout,
        );
        if let Some(v) = self.bounded(&path.key("max_header_bytes"), own.max_header_bytes, 4096, 1 << 20) {
            out.max_header_bytes = v as usize;
        }
        if let Some(v) = self.bounded(&path.key("max_connections"), own.max_connections, 1, 1_000_000) {
            out.max_connections = v as usize;
        }
        let streams = own.http2_max_concurrent_streams;
        if let Some(v) = self.bounded(&path.key("http2_max_concurrent_streams"), streams, 1, 65_536) {
            out.http2_max_concurrent_streams = v as u32;
        }
        out
    }

    fn bounded(&mut self, path: &KeyPath, value: Option<u64>, min: u64, max: u64) -> Option<u64> {
        let v = value?;
        if v == 0 {
            self.err(path, "must be a positive integer (0 is not allowed)");
            None
        } else if v < min || v > max {
            self.err(path, format!("must be between {min} and {max}"));
            None
        } else {
            Some(v)
        }
    }
}
