//! The path the protected service will serve: one model of a request path, asked by every
//! listener before it chooses a route, so tollgate never judges one path while the service
//! behind it serves another.
//!
//! The model, applied to the path as received (without its query):
//! - it starts with `/` and holds no raw `\`; each segment is percent-decoded as UTF-8;
//! - a segment's *name* is its decoded text before the first `;` (servlet containers,
//!   Spring and Jetty drop `;…` path parameters: `/admin;jsessionid=1` is `/admin`);
//! - refused (400): a name that is `.` or `..` (also encoded, also `..;x`), or made only of
//!   dots and spaces (Windows reads trailing dots and spaces away); an encoded `/`, `\` or
//!   `;` anywhere; an escape left after decoding (`%252e`: double encoding; IIS's `%u002e`); a NUL or
//!   control character; an empty name inside the path (`//`, `/;x/`);
//! - routes match whole segments of names; by default case-insensitively (ASP.NET Core,
//!   IIS and Express match routes that way), with Unicode's simple case mapping so the
//!   Kelvin sign, the long s and the dotless i read as `k`, `s` and `i`, as .NET's
//!   `OrdinalIgnoreCase` and Java's `equalsIgnoreCase` read them.
//!
//! The path forwarded is always the original: the service still needs its parameters.

use std::fmt;

/// How route prefixes compare with the names of a request path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PathCase {
    /// `/ADMIN` is `/admin` (the default: the safe reading for case-insensitive services).
    #[default]
    Insensitive,
    /// For services known to route case-sensitively.
    Sensitive,
}

/// Why a path was refused (400 `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request path contains a dot-segment")]
    DotSegment,
    #[error("the request path contains an encoded slash or backslash")]
    EncodedSeparator,
    #[error("the request path contains an encoded semicolon")]
    EncodedSemicolon,
    #[error("the request path contains a backslash")]
    Backslash,
    #[error("the request path contains a NUL or control character")]
    Control,
    #[error("the request path contains an empty segment")]
    EmptySegment,
    #[error("the request path is percent-encoded twice")]
    DoubleEncoded,
    #[error("the request path is not valid percent-encoded UTF-8")]
    BadEncoding,
    #[error("the request path must start with /")]
    NotAbsolute,
}

/// A request path that passed the model, read as the service will serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedPath {
    /// Percent-decoded, parameters kept: for people (logs, `explain`, refusals).
    decoded: String,
    /// `/name/name…`: segment names without parameters, case-folded unless
    /// [`PathCase::Sensitive`]. Routes match against this.
    key: String,
    case: PathCase,
}

// === impl ServedPath ===

impl ServedPath {
    /// Read `raw` (the path as received, without query) the way the service will.
    pub fn parse(raw: &str, case: PathCase) -> Result<ServedPath, PathError> {
        match Self::parse_plain(raw, case) {
            Some(plain) => Ok(plain),
            None => Self::parse_full(raw, case),
        }
    }

    /// The model's full reading, whatever the path holds.
    fn parse_full(raw: &str, case: PathCase) -> Result<ServedPath, PathError> {
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        if raw.contains('\\') {
            return Err(PathError::Backslash);
        }
        let segments = raw.split('/').skip(1);
        let count = raw.bytes().filter(|b| *b == b'/').count();
        let mut decoded = String::with_capacity(raw.len());
        let mut key = String::with_capacity(raw.len());
        for (i, segment) in segments.enumerate() {
            // Before decoding: an encoded `;` would become a parameter separator to a
            // service that decodes first, and stay part of the name to one that does not.
            if contains_encoded_semicolon(segment) {
                return Err(PathError::EncodedSemicolon);
            }
            let text = percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map_err(|_| PathError::BadEncoding)?;
            if text.contains(['/', '\\']) {
                return Err(PathError::EncodedSeparator);
            }
            if text.chars().any(char::is_control) {
                return Err(PathError::Control);
            }
            // `%252e` decodes to `%2e`, which a service that decodes again reads as `.`
            // (IIS refuses double escaping by default for the same reason).
            if has_escape(&text) {
                return Err(PathError::DoubleEncoded);
            }
            let name = text.split(';').next().unwrap_or_default();
            if is_dot_like(name) {
                return Err(PathError::DotSegment);
            }
            // A trailing slash is fine ("/orders/"); an empty name inside is not ("//").
            let last = i + 1 == count;
            if name.is_empty() && !last {
                return Err(PathError::EmptySegment);
            }
            decoded.push('/');
            decoded.push_str(&text);
            key.push('/');
            match case {
                PathCase::Sensitive => key.push_str(name),
                PathCase::Insensitive => fold_into(&mut key, name),
            }
        }
        Ok(ServedPath { decoded, key, case })
    }

    /// The common case in one pass: a path of printable ASCII without `%`, `;` or `\\` has
    /// nothing to decode and no parameters, so it is its own decoded text and its key is
    /// its lower-case (or itself). Any path this cannot read as fine (a dot-segment, an
    /// empty name) goes through [`ServedPath::parse`]'s full reading, which says why.
    fn parse_plain(raw: &str, case: PathCase) -> Option<ServedPath> {
        let plain = raw
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'%' && b != b';' && b != b'\\');
        if !plain || !raw.starts_with('/') {
            return None;
        }
        let mut names = raw.split('/').skip(1).peekable();
        while let Some(name) = names.next() {
            let last = names.peek().is_none();
            if is_dot_like(name) || (name.is_empty() && !last) {
                return None;
            }
        }
        let key = match case {
            PathCase::Sensitive => raw.to_owned(),
            PathCase::Insensitive => raw.to_ascii_lowercase(),
        };
        Some(ServedPath {
            decoded: raw.to_owned(),
            key,
            case,
        })
    }

    /// The decoded path, parameters included.
    pub fn as_str(&self) -> &str {
        &self.decoded
    }

    /// The segment names routes match against (folded unless case-sensitive).
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn case(&self) -> PathCase {
        self.case
    }
}

impl fmt::Display for ServedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decoded)
    }
}

/// `.`, `..`, and names that Windows would read as one of them (`...`, `.. `).
fn is_dot_like(name: &str) -> bool {
    !name.is_empty() && name.starts_with('.') && name.chars().all(|c| c == '.' || c == ' ')
}

/// A `%XX` escape, or IIS's `%uXXXX`.
fn has_escape(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len()).filter(|&i| b[i] == b'%').any(|i| {
        let hex = |from: usize, n: usize| {
            b.get(from..from + n)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        };
        hex(i + 1, 2) || (b.get(i + 1).is_some_and(|c| c.eq_ignore_ascii_case(&b'u')) && hex(i + 2, 4))
    })
}

fn contains_encoded_semicolon(segment: &str) -> bool {
    segment
        .as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'3' && (w[2] == b'b' || w[2] == b'B'))
}

/// Append `text` case-folded: ASCII lower-cased; other characters through their simple
/// upper- then lower-case mapping (so `K` Kelvin → `k`, `ſ` → `s`, `ı` → `i`).
pub fn fold_into(out: &mut String, text: &str) {
    if text.is_ascii() {
        out.extend(text.chars().map(|c| c.to_ascii_lowercase()));
        return;
    }
    out.extend(text.chars().map(fold_char));
}

/// `text` case-folded as route matching reads it.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(&mut out, text);
    out
}

fn fold_char(c: char) -> char {
    let upper = single(c.to_uppercase()).unwrap_or(c);
    // U+0130 (İ) lower-cases to two characters in full; its simple mapping is `i`.
    if upper == '\u{130}' {
        return 'i';
    }
    single(upper.to_lowercase()).unwrap_or(upper)
}

/// The only character of a case mapping, if it has exactly one.
fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

/// Whole-segment prefix match of an already-folded (or case-sensitive) `prefix` against a
/// path key: `/orders` matches `/orders` and `/orders/7`, never `/ordersX`.
pub fn prefix_matches(prefix: &str, key: &str) -> bool {
    if prefix == "/" {
        return key.starts_with('/');
    }
    match key.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests;
