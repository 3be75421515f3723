//! Reading the YAML text: key paths with their line:column, and deserialization into the
//! file structs that reports every unknown key, not just the first one.
//! All YAML parsing of tollgate lives here, so swapping `serde_yaml` is a one-file change.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
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

// === parsing ===

/// The file parsed into `T`, or every problem serde found: a syntax error, every unknown
/// key (each removed in turn so the next one is found), or the first type error.
/// When only unknown keys were wrong, `T` is still returned so that the semantic
/// validation can report its problems too.
pub fn parse<T: DeserializeOwned>(text: &str) -> (Option<T>, Positions, Vec<ConfigError>) {
    let positions = Positions::index(text);
    let mut errors = Vec::new();
    let mut value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(serde_yaml::Value::Null) => serde_yaml::Value::Mapping(Default::default()),
        Ok(v) => v,
        Err(e) => {
            let position = e.location().map(|l| Position {
                line: l.line(),
                column: l.column(),
            });
            errors.push(ConfigError::new(KeyPath::root(), position, syntax_message(&e)));
            return (None, positions, errors);
        }
    };
    // Bounded: each round removes one key from a finite document.
    for _ in 0..1000 {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => return (Some(parsed), positions, errors),
            Err(err) => {
                let at = KeyPath::from_serde(err.path());
                let message = err.inner().to_string();
                if let Some(field) = unknown_field(&message) {
                    // The path usually ends at the unknown key already; through a custom
                    // deserializer (secrets) it ends at the parent.
                    let path = if at.last_key() == Some(field) {
                        at.clone()
                    } else {
                        at.key(field)
                    };
                    let hint = expected_list(&message);
                    errors.push(ConfigError::new(
                        path.clone(),
                        positions.find(&path),
                        format!("unknown key `{field}`{hint}"),
                    ));
                    if !remove_key(&mut value, &path) {
                        break;
                    }
                } else {
                    errors.push(ConfigError::new(at.clone(), positions.find(&at), message));
                    break;
                }
            }
        }
    }
    (None, positions, errors)
}

fn syntax_message(e: &serde_yaml::Error) -> String {
    // serde_yaml appends " at line L column C"; the position is reported separately.
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => format!("invalid YAML: {}", &text[..i]),
        None => format!("invalid YAML: {text}"),
    }
}

/// serde's message for `deny_unknown_fields` is "unknown field `x`, expected …".
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn expected_list(message: &str) -> String {
    match message.find(", expected ") {
        Some(i) => format!(" ({})", &message[i + 2..]),
        None => String::new(),
    }
}

fn remove_key(value: &mut serde_yaml::Value, path: &KeyPath) -> bool {
    let Some((last, init)) = path.0.split_last() else {
        return false;
    };
    let mut cursor = value;
    for segment in init {
        let next = match segment {
            Segment::Key(k) => cursor.get_mut(k.as_str()),
            Segment::Index(i) => cursor.get_mut(*i),
        };
        match next {
            Some(v) => cursor = v,
            None => return false,
        }
    }
    match (last, cursor) {
        (Segment::Key(k), serde_yaml::Value::Mapping(map)) => map.remove(k.as_str()).is_some(),
        _ => false,
    }
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
}
