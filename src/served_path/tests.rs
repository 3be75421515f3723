use proptest::prelude::*;

use super::*;

fn parse(raw: &str) -> Result<ServedPath, PathError> {
    ServedPath::parse(raw, PathCase::Insensitive)
}

#[test]
fn ordinary_paths_pass_decoded() {
    assert_eq!(parse("/orders/7").unwrap().as_str(), "/orders/7");
    assert_eq!(parse("/").unwrap().as_str(), "/");
    assert_eq!(parse("/orders/").unwrap().as_str(), "/orders/");
    assert_eq!(
        parse("/%6Frders").unwrap().key(),
        "/orders",
        "matched as the upstream will see it"
    );
    assert_eq!(parse("/a%20b").unwrap().as_str(), "/a b");
    assert_eq!(parse("/.well-known/x").unwrap().key(), "/.well-known/x");
}

#[test]
fn segment_parameters_are_kept_for_people_and_ignored_for_matching() {
    let p = parse("/admin;jsessionid=0A1B/users").unwrap();
    assert_eq!(p.as_str(), "/admin;jsessionid=0A1B/users");
    assert_eq!(p.key(), "/admin/users");
    assert_eq!(parse("/admin;").unwrap().key(), "/admin");
    assert_eq!(
        parse("/orders/;v=1").unwrap().key(),
        "/orders/",
        "a trailing empty name is a trailing slash"
    );
}

#[test]
fn case_is_folded_unless_sensitive() {
    assert_eq!(parse("/ADMIN/Users").unwrap().key(), "/admin/users");
    let sensitive = ServedPath::parse("/ADMIN/Users", PathCase::Sensitive).unwrap();
    assert_eq!(sensitive.key(), "/ADMIN/Users");
    // Characters that .NET's OrdinalIgnoreCase or Java's equalsIgnoreCase read as ASCII.
    assert_eq!(parse("/\u{212A}ey").unwrap().key(), "/key", "Kelvin sign");
    assert_eq!(parse("/\u{17F}ecret").unwrap().key(), "/secret", "long s");
    assert_eq!(parse("/adm\u{131}n").unwrap().key(), "/admin", "dotless i");
    assert_eq!(parse("/adm\u{130}n").unwrap().key(), "/admin", "dotted capital I");
    assert_eq!(
        parse("/stra%C3%9Fe").unwrap().key(),
        "/straße",
        "no multi-character mapping"
    );
}

#[test]
fn path_tricks_are_refused() {
    for (path, why) in [
        ("/orders/../admin", PathError::DotSegment),
        ("/orders/./x", PathError::DotSegment),
        ("/orders/%2e%2e/admin", PathError::DotSegment),
        ("/orders/%2E/x", PathError::DotSegment),
        ("/orders/.%2e/admin", PathError::DotSegment),
        ("/..", PathError::DotSegment),
        ("/orders%2fadmin", PathError::EncodedSeparator),
        ("/orders%2Fadmin", PathError::EncodedSeparator),
        ("/orders%5cadmin", PathError::EncodedSeparator),
        ("/orders\\admin", PathError::Backslash),
        ("/orders%00", PathError::Control),
        ("/orders%0d%0aX: y", PathError::Control),
        ("//orders", PathError::EmptySegment),
        ("/a//b", PathError::EmptySegment),
        ("/%ff", PathError::BadEncoding),
        ("/orders/%252e%252e/admin", PathError::DoubleEncoded),
        ("/a%2541", PathError::DoubleEncoded),
        ("/orders/%u002e%u002e/admin", PathError::DoubleEncoded),
        ("/orders/%U002E", PathError::DoubleEncoded),
        ("orders", PathError::NotAbsolute),
    ] {
        assert_eq!(parse(path), Err(why), "{path}");
    }
}

#[test]
fn servlet_dot_segments_with_parameters_are_refused() {
    for path in [
        "/healthz/..;/admin/users",
        "/healthz/..;x=1/admin/users",
        "/healthz/%2e%2e;/admin/users",
        "/healthz/.%2e;/admin/users",
        "/healthz/.;/..;/admin",
        "/healthz/...",
        "/healthz/..%20/admin",
        "/healthz/. /admin",
    ] {
        assert_eq!(parse(path), Err(PathError::DotSegment), "{path}");
    }
    for path in ["/healthz/..%3b/admin", "/healthz/..%3B/admin", "/admin%3bx/users"] {
        assert_eq!(parse(path), Err(PathError::EncodedSemicolon), "{path}");
    }
    assert_eq!(
        parse("/;x/admin"),
        Err(PathError::EmptySegment),
        "an empty name inside the path"
    );
}

#[test]
fn prefixes_match_whole_segments() {
    assert!(prefix_matches("/orders", "/orders"));
    assert!(prefix_matches("/orders", "/orders/7"));
    assert!(!prefix_matches("/orders", "/ordersx"));
    assert!(prefix_matches("/", "/anything"));
}

// --- Property tests against two independent readings of a path -------------------------

/// Pieces that paths are made of: names in several casings, non-ASCII letters that fold
/// to ASCII, dots, parameters, and their percent-encodings.
const ATOMS: &[&str] = &[
    "admin",
    "ADMIN",
    "Admin",
    "users",
    "healthz",
    "orders",
    "a",
    "x",
    "\u{212A}",
    "\u{17F}",
    "\u{131}",
    "\u{130}",
    "%C4%B1",
    ".",
    "..",
    "%2e",
    "%2E",
    ";",
    ";x=1",
    ";jsessionid=0A1B",
    "%3b",
    "%3B",
    "%41",
    "%61",
    "%2f",
    " ",
    "%20",
    "~",
    "-",
    "%25",
    "%252e",
];

/// Route prefixes, in order; the last one catches everything.
const ROUTES: &[&str] = &["/healthz", "/admin/users", "/admin", "/orders", "/a/x", "/"];

fn segment() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ATOMS), 0..4).prop_map(|atoms| atoms.concat())
}

fn raw_path() -> impl Strategy<Value = String> {
    (prop::collection::vec(segment(), 1..6), any::<bool>()).prop_map(|(segments, trailing)| {
        let mut path = format!("/{}", segments.join("/"));
        if trailing {
            path.push('/');
        }
        path
    })
}

/// Resolve `.`/`..` over decoded segments (RFC 3986 §5.2.4); `None` above the root.
fn resolve(segments: Vec<String>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in segments {
        match s.as_str() {
            "." => {}
            ".." => {
                out.pop()?;
            }
            _ => out.push(s),
        }
    }
    Some(out)
}

fn decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Tomcat / Spring / Jetty: drop `;…` from each raw segment, decode, resolve dot-segments.
fn servlet_reading(raw: &str) -> Option<Vec<String>> {
    let segments = raw
        .split('/')
        .skip(1)
        .map(|s| decode(s.split(';').next().unwrap_or_default()))
        .collect::<Option<Vec<_>>>()?;
    resolve(segments)
}

/// ASP.NET Core (Kestrel): decode everything but `%2F`, resolve dot-segments; `;` is text.
fn aspnet_reading(raw: &str) -> Option<Vec<String>> {
    let segments = raw
        .split('/')
        .skip(1)
        .map(|s| decode(&s.replace("%2F", "%252F").replace("%2f", "%252f")))
        .collect::<Option<Vec<_>>>()?;
    resolve(segments)
}

/// Java's `equalsIgnoreCase`, character by character (a reference independent of `fold`).
fn same_ignoring_case(a: &str, b: &str) -> bool {
    let simple = |it: &mut dyn Iterator<Item = char>, c: char| {
        let v: Vec<char> = it.collect();
        if v.len() == 1 { v[0] } else { c }
    };
    let lower = |c: char| {
        if c == '\u{130}' {
            'i'
        } else {
            simple(&mut c.to_lowercase(), c)
        }
    };
    let upper = |c: char| simple(&mut c.to_uppercase(), c);
    a.chars().count() == b.chars().count()
        && a.chars()
            .zip(b.chars())
            .all(|(x, y)| x == y || upper(x) == upper(y) || lower(upper(x)) == lower(upper(y)))
}

/// The first route whose prefix matches the reading's segment names (parameters ignored,
/// as the model says routes match), compared as `case` says.
fn reference_route(segments: &[String], case: PathCase) -> usize {
    let names: Vec<&str> = segments
        .iter()
        .map(|s| s.split(';').next().unwrap_or_default())
        .collect();
    ROUTES
        .iter()
        .position(|prefix| {
            let wanted: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
            wanted.len() <= names.len()
                && wanted.iter().zip(&names).all(|(w, n)| match case {
                    PathCase::Sensitive => w == n,
                    PathCase::Insensitive => same_ignoring_case(w, n),
                })
        })
        .expect("the last route catches everything")
}

fn tollgate_route(path: &ServedPath) -> usize {
    ROUTES
        .iter()
        .position(|prefix| {
            let prefix = match path.case() {
                PathCase::Sensitive => prefix.to_string(),
                PathCase::Insensitive => fold(prefix),
            };
            prefix_matches(&prefix, path.key())
        })
        .expect("the last route catches everything")
}

fn has_dot_segment(segments: &[String]) -> bool {
    segments.iter().any(|s| s == "." || s == "..")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn the_one_pass_reading_is_the_full_reading(
        raw in prop_oneof![raw_path(), "[/a-zA-Z0-9._~;%\\\\ -]{0,24}", "/[/a-z.]{0,12}"],
        sensitive in any::<bool>(),
    ) {
        let case = if sensitive { PathCase::Sensitive } else { PathCase::Insensitive };
        if let Some(plain) = ServedPath::parse_plain(&raw, case) {
            prop_assert_eq!(Ok(plain), ServedPath::parse_full(&raw, case));
        }
        prop_assert_eq!(ServedPath::parse(&raw, case), ServedPath::parse_full(&raw, case));
    }

    #[test]
    fn an_accepted_path_is_routed_as_both_frameworks_will_serve_it(raw in raw_path()) {
        for case in [PathCase::Insensitive, PathCase::Sensitive] {
            let Ok(path) = ServedPath::parse(&raw, case) else { continue };
            let servlet = servlet_reading(&raw).expect("an accepted path never climbs above the root");
            let aspnet = aspnet_reading(&raw).expect("an accepted path never climbs above the root");
            let chosen = tollgate_route(&path);
            prop_assert_eq!(chosen, reference_route(&servlet, case), "servlet reading of {}", raw);
            prop_assert_eq!(chosen, reference_route(&aspnet, case), "ASP.NET reading of {}", raw);
        }
    }

    #[test]
    fn no_accepted_path_holds_a_dot_segment_under_either_reading(raw in raw_path()) {
        if ServedPath::parse(&raw, PathCase::Insensitive).is_ok() {
            let raw_names = |reading: fn(&str) -> Vec<String>| reading(&raw);
            let servlet = raw_names(|r| r.split('/').skip(1).map(|s| decode(s.split(';').next().unwrap_or_default()).unwrap_or_default()).collect());
            let aspnet = raw_names(|r| r.split('/').skip(1).map(|s| decode(s).unwrap_or_default()).collect());
            prop_assert!(!has_dot_segment(&servlet), "servlet reading of {} has a dot-segment", raw);
            prop_assert!(!has_dot_segment(&aspnet), "ASP.NET reading of {} has a dot-segment", raw);
        }
    }
}

#[test]
fn plain_paths_take_the_one_pass_reading_and_the_rest_the_full_one() {
    let plain = |raw: &str| ServedPath::parse_plain(raw, PathCase::Insensitive);
    assert_eq!(plain("/Orders/7").unwrap().key(), "/orders/7");
    assert_eq!(plain("/Orders/7").unwrap().as_str(), "/Orders/7");
    assert_eq!(plain("/").unwrap().key(), "/");
    assert_eq!(plain("/orders/").unwrap().key(), "/orders/");
    for raw in [
        "/a/../b", "/a/./b", "/..", "/a//b", "/a%2e", "/a;x", "/a\\b", "orders", "", "/é",
    ] {
        assert!(plain(raw).is_none(), "{raw}");
    }
}
