//! Reading the YAML text: key paths with their line:column, and deserialization into the
//! file structs that reports every problem (unknown keys, missing keys, wrong types), not
//! just the first one.
//! All YAML parsing of tollgate lives here, so swapping `serde_yaml` is a one-file change.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_yaml::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::ConfigError;

/// A key path such as `inbound.routes[2].require.roles_any`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(Vec<Segment>);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Line and column (both 1-based) of a key in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Where each key path of the document starts.
#[derive(Debug, Default)]
pub struct Positions(HashMap<KeyPath, Position>);

/// The file read into `T`, with every problem found on the way.
pub struct Parsed<T> {
    /// `None` when the document could not be read, even with its problems set aside.
    pub value: Option<T>,
    pub positions: Positions,
    pub errors: Vec<ConfigError>,
    pub aside: SetAside,
}

/// Key paths taken out of the document (unknown or wrongly typed) or filled with a
/// placeholder (required but missing or unreadable) so that reading could go on. The
/// semantic checks see the document without them: what they say there is no news.
#[derive(Debug, Default)]
pub struct SetAside {
    removed: Vec<KeyPath>,
    filled: Vec<KeyPath>,
}

/// One problem serde reported, by how reading gets past it.
enum Problem {
    /// `deny_unknown_fields`: the key is removed.
    UnknownKey {
        path: KeyPath,
        field: String,
        hint: String,
    },
    /// A required key is absent from the mapping at `parent`: a placeholder is put there.
    MissingKey { parent: KeyPath, field: String },
    /// The node at `path` has the wrong type or value: it is removed (a list element is
    /// replaced by a placeholder).
    WrongType { path: KeyPath, message: String },
}

/// The document being read, and what was found wrong in it so far.
struct Recovery<'a> {
    value: Value,
    positions: &'a Positions,
    errors: Vec<ConfigError>,
    aside: SetAside,
}

/// Each round sets one node aside, so any real file runs out of problems long before;
/// the bound only guards against a loop.
const MAX_ROUNDS: usize = 200;

// === impl KeyPath ===

impl KeyPath {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn key(&self, key: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.to_string()));
        next
    }

    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    fn parent(&self) -> Option<Self> {
        let mut parent = self.clone();
        parent.0.pop().map(|_| parent)
    }

    fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        let mut out = Self::root();
        for segment in path.iter() {
            match segment {
                S::Seq { index } => out = out.index(*index),
                S::Map { key } => out = out.key(key),
                S::Enum { variant } => out = out.key(variant),
                S::Unknown => {}
            }
        }
        out
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

// === impl Positions ===

impl Positions {
    /// Index the document; a syntax error is reported by `parse` instead, so it is ignored here.
    fn index(text: &str) -> Self {
        let mut indexer = Indexer::default();
        let _ = Parser::new_from_str(text).load(&mut indexer, false);
        Positions(indexer.positions)
    }

    /// The position of `path`, or of its nearest ancestor present in the file.
    pub fn find(&self, path: &KeyPath) -> Option<Position> {
        let mut cursor = Some(path.clone());
        while let Some(p) = cursor {
            if let Some(pos) = self.0.get(&p) {
                return Some(*pos);
            }
            cursor = p.parent();
        }
        None
    }
}

/// Walks parser events, keeping a stack of open containers to name each node's path.
#[derive(Default)]
struct Indexer {
    stack: Vec<Frame>,
    positions: HashMap<KeyPath, Position>,
}

enum Frame {
    Map {
        path: KeyPath,
        pending_key: Option<String>,
    },
    Seq {
        path: KeyPath,
        next: usize,
    },
}

impl Indexer {
    /// The path the next node will have, advancing the parent's state.
    /// `None` while a mapping key itself is being read.
    fn next_node_path(&mut self, key_text: Option<&str>, mark: Marker) -> Option<KeyPath> {
        let pos = Position {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match self.stack.last_mut() {
            None => Some(KeyPath::root()),
            Some(Frame::Seq { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                self.positions.entry(p.clone()).or_insert(pos);
                Some(p)
            }
            Some(Frame::Map { path, pending_key }) => match pending_key.take() {
                Some(key) => Some(path.key(&key)),
                None => {
                    // This node is a key. Only scalar keys name a path.
                    let key = key_text.unwrap_or_default().to_string();
                    self.positions.entry(path.key(&key)).or_insert(pos);
                    *pending_key = Some(key);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => {
                self.next_node_path(Some(&text), mark);
            }
            Event::Alias(_) => {
                self.next_node_path(None, mark);
            }
            Event::MappingStart(..) => {
                let path = self.next_node_path(None, mark).unwrap_or_default();
                self.stack.push(Frame::Map {
                    path,
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.next_node_path(None, mark).unwrap_or_default();
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

// === impl SetAside ===

impl SetAside {
    /// `path` was set aside itself, or lies inside a node that was.
    fn covers(&self, path: &KeyPath) -> bool {
        let mut all = self.removed.iter().chain(&self.filled);
        all.any(|aside| path.0.starts_with(&aside.0))
    }

    /// Whether a semantic error may be a consequence of a node set aside rather than news:
    /// it lies at or under one, or names the mapping that lost one (a `require` whose only
    /// key was mistyped is "empty" once that key is gone; a placeholder leaves no such gap).
    pub fn explains(&self, error: &ConfigError) -> bool {
        let path = error.path.as_str();
        let under = |aside: &KeyPath| {
            path.strip_prefix(aside.to_string().as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        let holder = |aside: &KeyPath| aside.parent().is_some_and(|p| p.to_string() == path);
        self.removed.iter().any(|a| under(a) || holder(a)) || self.filled.iter().any(under)
    }
}

// === impl Problem ===

impl Problem {
    fn from_serde(err: &serde_path_to_error::Error<serde_yaml::Error>) -> Self {
        let at = KeyPath::from_serde(err.path());
        let message = err.inner().to_string();
        if let Some(field) = quoted_after(&message, "unknown field `") {
            // The path usually ends at the unknown key already; through a custom
            // deserializer (secrets) it ends at the parent.
            let path = if at.last_key() == Some(field) {
                at.clone()
            } else {
                at.key(field)
            };
            return Problem::UnknownKey {
                path,
                field: field.to_string(),
                hint: expected_list(&message),
            };
        }
        if let Some(field) = quoted_after(&message, "missing field `") {
            return Problem::MissingKey {
                parent: at,
                field: field.to_string(),
            };
        }
        Problem::WrongType {
            path: at,
            message: type_message(&message),
        }
    }
}

// === impl Recovery ===

impl Recovery<'_> {
    /// Deserialize, and after each problem set the offending node aside and try again, so
    /// that one run finds them all. `None` when the document cannot be read even so.
    fn run<T: DeserializeOwned>(&mut self) -> Option<T> {
        for _ in 0..MAX_ROUNDS {
            let problem = match attempt::<T>(&self.value) {
                Ok(parsed) => return Some(parsed),
                Err(problem) => problem,
            };
            let moved_on = match problem {
                Problem::UnknownKey { path, field, hint } => {
                    self.report(&path, format!("unknown key `{field}`{hint}"));
                    self.take_out(path)
                }
                Problem::MissingKey { parent, field } => self.missing_key::<T>(parent, &field),
                Problem::WrongType { path, message } => {
                    self.report(&path, message);
                    self.wrong_type::<T>(path)
                }
            };
            if !moved_on {
                return None;
            }
        }
        let note = format!("more than {MAX_ROUNDS} problems: reading stopped here; fix these first");
        self.report(&KeyPath::root(), note);
        None
    }

    fn report(&mut self, path: &KeyPath, message: String) {
        let position = self.positions.find(path);
        self.errors
            .push(ConfigError::new(path.clone(), position, message));
    }

    /// A required key is absent. When it was there but set aside (or lies inside a
    /// placeholder), its problem is already reported: saying "missing" too would be wrong.
    fn missing_key<T: DeserializeOwned>(&mut self, parent: KeyPath, field: &str) -> bool {
        let path = parent.key(field);
        if !self.aside.covers(&path) {
            self.report(&parent, format!("missing key `{field}`"));
        }
        self.fill::<T>(&path) || self.take_out(parent)
    }

    /// A key's wrong value is removed (a required key then comes back as missing, and
    /// gets a placeholder). A list element is replaced instead: removing it would shift
    /// the later elements, and their error paths would be wrong.
    fn wrong_type<T: DeserializeOwned>(&mut self, path: KeyPath) -> bool {
        match path.0.last() {
            Some(Segment::Index(_)) => self.fill::<T>(&path) || self.take_out(path),
            _ => self.take_out(path),
        }
    }

    /// Removes the key at `path`, or else the nearest enclosing key (never a list element).
    fn take_out(&mut self, path: KeyPath) -> bool {
        let mut cursor = Some(path);
        while let Some(path) = cursor {
            if remove_key(&mut self.value, &path) {
                self.aside.removed.push(path);
                return true;
            }
            cursor = path.parent();
        }
        false
    }

    /// Puts at `path` the first placeholder the document reads past, so that the rest of
    /// the mapping or list around it is still read and checked.
    fn fill<T: DeserializeOwned>(&mut self, path: &KeyPath) -> bool {
        for placeholder in placeholders() {
            if !put(&mut self.value, path, placeholder) {
                return false;
            }
            let stuck = matches!(
                attempt::<T>(&self.value),
                Err(Problem::WrongType { path: at, .. }) if at == *path
            );
            if !stuck {
                self.aside.removed.retain(|removed| removed != path);
                self.aside.filled.push(path.clone());
                return true;
            }
        }
        false
    }
}

// === parsing ===

/// The file parsed into `T`, or every problem serde found: a syntax error, or every unknown
/// key, missing key and wrongly typed value, each set aside in turn so the next is found.
/// When the document reads once its problems are set aside, `T` is still returned so that
/// the semantic validation can report its problems too (see [`SetAside::explains`]).
pub fn parse<T: DeserializeOwned>(text: &str) -> Parsed<T> {
    let positions = Positions::index(text);
    let value = match serde_yaml::from_str(text) {
        Ok(Value::Null) => Value::Mapping(Default::default()),
        Ok(v) => v,
        Err(e) => {
            let position = e.location().map(|l| Position {
                line: l.line(),
                column: l.column(),
            });
            let error = ConfigError::new(KeyPath::root(), position, syntax_message(&e));
            return Parsed {
                value: None,
                positions,
                errors: vec![error],
                aside: SetAside::default(),
            };
        }
    };
    let mut recovery = Recovery {
        value,
        positions: &positions,
        errors: Vec::new(),
        aside: SetAside::default(),
    };
    let value = recovery.run::<T>();
    let Recovery { errors, aside, .. } = recovery;
    Parsed {
        value,
        positions,
        errors,
        aside,
    }
}

fn attempt<T: DeserializeOwned>(value: &Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| Problem::from_serde(&e))
}

/// What stands in for a required key that is missing or unreadable, tried in this order.
fn placeholders() -> [Value; 5] {
    [
        Value::String(String::new()),
        Value::Sequence(Vec::new()),
        Value::Mapping(Default::default()),
        Value::Number(0.into()),
        Value::Bool(false),
    ]
}

fn syntax_message(e: &serde_yaml::Error) -> String {
    // serde_yaml appends " at line L column C"; the position is reported separately.
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => format!("invalid YAML: {}", &text[..i]),
        None => format!("invalid YAML: {text}"),
    }
}

/// The name in serde's "unknown field `x`, expected …" or "missing field `x`".
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

fn expected_list(message: &str) -> String {
    match message.find(", expected ") {
        Some(i) => format!(" ({})", &message[i + 2..]),
        None => String::new(),
    }
}

/// serde's wording in the file's words: a sequence is a list, a struct a mapping.
fn type_message(raw: &str) -> String {
    if let Some(rest) = raw.strip_prefix("unknown variant ") {
        return format!("unknown value {rest}");
    }
    let found_expected = |prefix: &str| {
        raw.strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
    };
    if let Some((found, expected)) = found_expected("invalid type: ") {
        return format!(
            "expected {}, found {}",
            expected_words(expected),
            found_words(found)
        );
    }
    if let Some((found, expected)) = found_expected("invalid value: ") {
        let value = match found.split('`').nth(1) {
            Some(v) => format!("`{v}`"),
            None => found_words(found),
        };
        return format!("invalid value {value}, expected {}", expected_words(expected));
    }
    raw.to_string()
}

/// What serde found. A string is not echoed: it may be a secret typed in the wrong place.
fn found_words(found: &str) -> String {
    let quoted = found.split('`').nth(1);
    match found.split(' ').next().unwrap_or_default() {
        "string" => "a string".into(),
        "integer" | "floating" => format!("the number {}", quoted.unwrap_or("?")),
        "boolean" => format!("`{}`", quoted.unwrap_or("?")),
        "unit" => "an empty value".into(),
        "sequence" => "a list".into(),
        "map" => "a mapping".into(),
        _ => found.into(),
    }
}

fn expected_words(expected: &str) -> String {
    match expected {
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        "a boolean" => "`true` or `false`".into(),
        "path string" => "a path".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        s if s.starts_with("struct ") => "a mapping".into(),
        // serde_yaml: "a Value::Tagged enum"; every enum of the file is one plain word.
        s if s.ends_with(" enum") || s.starts_with("enum ") => "a plain value".into(),
        s => s.into(),
    }
}

/// The node at `path`, when the document has one there.
fn node_mut<'v>(value: &'v mut Value, path: &[Segment]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |cursor, segment| match segment {
        Segment::Key(k) => cursor.get_mut(k.as_str()),
        Segment::Index(i) => cursor.get_mut(*i),
    })
}

/// Sets the node at `path`: a mapping's key (added when absent) or an existing list element.
fn put(value: &mut Value, path: &KeyPath, node: Value) -> bool {
    let Some((last, parent)) = path.0.split_last() else {
        return false;
    };
    let Some(parent) = node_mut(value, parent) else {
        return false;
    };
    let slot = match (last, parent) {
        (Segment::Key(key), Value::Mapping(map)) => {
            map.insert(Value::String(key.clone()), node);
            return true;
        }
        (Segment::Index(i), Value::Sequence(items)) => items.get_mut(*i),
        _ => None,
    };
    slot.map(|slot| *slot = node).is_some()
}

/// Removes a mapping's key; `false` when `path` does not end in a key present there.
fn remove_key(value: &mut Value, path: &KeyPath) -> bool {
    let Some((Segment::Key(key), parent)) = path.0.split_last() else {
        return false;
    };
    node_mut(value, parent)
        .and_then(Value::as_mapping_mut)
        .is_some_and(|map| map.remove(key.as_str()).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_path_displays_like_the_contract() {
        let p = KeyPath::root()
            .key("inbound")
            .key("routes")
            .index(2)
            .key("require");
        assert_eq!(p.to_string(), "inbound.routes[2].require");
    }

    #[test]
    fn positions_name_nested_keys_and_items() {
        let text = "a:\n  b:\n    - x: 1\n    - y: 2\n";
        let positions = Positions::index(text);
        let y = KeyPath::root().key("a").key("b").index(1).key("y");
        assert_eq!(positions.find(&y), Some(Position { line: 4, column: 7 }));
        let b = KeyPath::root().key("a").key("b");
        assert_eq!(positions.find(&b), Some(Position { line: 2, column: 3 }));
    }

    #[test]
    fn serde_wording_is_put_in_the_words_of_the_file() {
        let cases = [
            (
                "invalid type: sequence, expected a Value::Tagged enum",
                "expected a plain value, found a list",
            ),
            (
                "invalid type: boolean `true`, expected a string",
                "expected a string, found `true`",
            ),
            (
                "invalid type: floating point `5.5`, expected u64",
                "expected a whole number (0 or more), found the number 5.5",
            ),
            (
                "invalid type: string \"hunter2\", expected struct FileAuth",
                "expected a mapping, found a string",
            ),
            (
                "unknown variant `digest`, expected `post` or `basic`",
                "unknown value `digest`, expected `post` or `basic`",
            ),
        ];
        for (serde, ours) in cases {
            assert_eq!(type_message(serde), ours);
        }
    }
}
