//! `path`: the served-path guard and route matching. The input is a request path (UTF-8),
//! optionally after one byte that is not `/` choosing the method.
//!
//! An accepted path's key (what routes match) holds no `.`/`..` name nor a name Windows
//! reads as one, no `;`, `\`, control character or percent escape, no empty name but a
//! trailing one, as many names as the path has segments; it reads back as itself; case
//! only folds it. Refusal does not depend on the case setting. The route chosen is the
//! first whose prefix is a whole-segment prefix of the key.
#![no_main]

use std::sync::LazyLock;

use http::Method;
use libfuzzer_sys::fuzz_target;
use tollgate::config::{Access, InboundRoute, PathPrefix};
use tollgate::inbound::policy;
use tollgate::served_path::{PathCase, ServedPath, fold};

const METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
];

static ROUTES: LazyLock<Vec<InboundRoute>> = LazyLock::new(|| {
    [
        ("/orders/admin", None),
        ("/orders", Some(vec![Method::GET])),
        ("/Admin", None),
        ("/a", Some(vec![Method::POST, Method::DELETE])),
        ("/stra\u{df}e/x", None),
        ("/K", None),
        ("/.well-known", None),
        ("/api/v1/", None),
        ("/", Some(vec![Method::POST])),
    ]
    .into_iter()
    .map(|(prefix, methods)| InboundRoute {
        label: prefix.into(),
        path_prefix: PathPrefix::parse(prefix).expect("route prefix"),
        methods,
        access: Access::Anonymous,
    })
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (method, raw) = match text.chars().next() {
        Some(c) if c != '/' => (&METHODS[c as usize % METHODS.len()], &text[c.len_utf8()..]),
        _ => (&Method::GET, text),
    };
    let insensitive = ServedPath::parse(raw, PathCase::Insensitive);
    let sensitive = ServedPath::parse(raw, PathCase::Sensitive);
    match (&insensitive, &sensitive) {
        (Ok(i), Ok(s)) => {
            check_accepted(raw, s, PathCase::Sensitive);
            check_accepted(raw, i, PathCase::Insensitive);
            assert_eq!(i.key(), fold(s.key()), "case does more than fold: {raw:?}");
            assert_eq!(i.as_str(), s.as_str());
            check_route(i, method);
            check_route(s, method);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("the case setting changed whether {raw:?} is refused"),
    }
});

fn check_accepted(raw: &str, path: &ServedPath, case: PathCase) {
    let key = path.key();
    assert!(key.starts_with('/') && path.as_str().starts_with('/'), "{raw:?}");
    assert!(!key.contains([';', '\\']), "{raw:?} → {key:?}");
    let names: Vec<&str> = key[1..].split('/').collect();
    assert_eq!(names.len(), raw.matches('/').count(), "{raw:?} → {key:?}");
    assert_eq!(names.len(), path.as_str().matches('/').count(), "{raw:?}");
    for (i, name) in names.iter().enumerate() {
        let dot_like = name.starts_with('.') && name.chars().all(|c| c == '.' || c == ' ');
        assert!(!dot_like, "{raw:?} → {key:?}: dot segment");
        assert!(!name.chars().any(char::is_control), "{raw:?} → {key:?}");
        assert!(!has_escape(name), "{raw:?} → {key:?}: an escape is left");
        assert!(!name.is_empty() || i + 1 == names.len(), "{raw:?} → {key:?}");
    }
    let again = ServedPath::parse(key, case).unwrap_or_else(|e| panic!("{raw:?} → {key:?}: {e}"));
    assert_eq!(again.key(), key, "{raw:?}: the key does not read back as itself");
}

/// `%XX` with two hex digits, or `%uXXXX`.
fn has_escape(name: &str) -> bool {
    let b = name.as_bytes();
    let hex = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    };
    (0..b.len()).any(|i| {
        b[i] == b'%' && (hex(i + 1, 2) || (matches!(b.get(i + 1), Some(b'u' | b'U')) && hex(i + 2, 4)))
    })
}

/// The first route whose method fits and whose prefix names are the path's first names.
fn check_route(path: &ServedPath, method: &Method) {
    let expected = ROUTES.iter().find(|r| {
        let prefix = match path.case() {
            PathCase::Sensitive => r.path_prefix.as_str().to_string(),
            PathCase::Insensitive => fold(r.path_prefix.as_str()),
        };
        let names_match = prefix == "/" || {
            let want: Vec<&str> = prefix[1..].split('/').collect();
            let have: Vec<&str> = path.key()[1..].split('/').collect();
            have.len() >= want.len() && want.iter().zip(&have).all(|(w, h)| w == h)
        };
        names_match && r.methods.as_ref().is_none_or(|m| m.contains(method))
    });
    let chosen = policy::find_route(&ROUTES, method, path);
    assert_eq!(
        chosen.map(|r| &r.label),
        expected.map(|r| &r.label),
        "{method} {:?} (key {:?})",
        path.as_str(),
        path.key()
    );
}
