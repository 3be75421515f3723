//! `token`: one inbound request decided end to end (served path, route, bearer extraction,
//! JWT header and claims, issuer, key, signature, policy, identity headers) against a
//! fixed policy and key set, in enforce, audit and strict settings.
//!
//! The input is the `Authorization` header value, optionally after a request head and a
//! blank line (without one: `GET /orders/7`):
//!
//! ```text
//! POST /orders/7?x=1                 method and request target
//! X-HTTP-Method-Override: DELETE     more request headers, one a line
//!
//! Bearer eyJhbGciOi…                 the Authorization value (none if empty)
//! ```
//!
//! The value may instead be `sign:{claims}`, `sign-rs256:{claims}` or
//! `sign-header:{header}\n{claims}` (JSON): signed with a key of the key set, so that
//! mutated claims get past the signature to the claim checks, policy and identity headers.
//! `FUZZ_PRINT=1 cargo fuzz run token <files>` prints what each input was decided.
#![no_main]

use std::sync::LazyLock;

use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate::inbound::decide;
use tollgate_fuzz::{Fixture, block_on, check_decision, fixture, summary};

/// A request as hyper hands it to the inbound handler.
struct Request {
    method: Method,
    path: String,
    headers: HeaderMap,
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some(req) = read(f, data) else {
        return;
    };
    let enforce = block_on(decide(f.enforce.judge(), &req.headers, &req.method, &req.path));
    check_decision(&f.enforce, &req.headers, &req.method, &req.path, &enforce);
    // The mode only changes what is done with a decision, never the decision.
    let audit = block_on(decide(f.audit.judge(), &req.headers, &req.method, &req.path));
    assert_eq!(summary(&enforce), summary(&audit), "audit decided otherwise");
    let strict = block_on(decide(f.strict.judge(), &req.headers, &req.method, &req.path));
    check_decision(&f.strict, &req.headers, &req.method, &req.path, &strict);
    if *PRINT {
        eprintln!(
            "{} {}: {} | strict: {}",
            req.method,
            req.path,
            summary(&enforce),
            summary(&strict)
        );
    }
});

/// `FUZZ_PRINT=1`: print each decision (to see what the seeds reach).
static PRINT: LazyLock<bool> = LazyLock::new(|| std::env::var_os("FUZZ_PRINT").is_some());

/// `None` for what hyper would not have parsed as a request.
fn read(f: &Fixture, data: &[u8]) -> Option<Request> {
    let (head, value) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (&b""[..], data),
    };
    let mut req = Request {
        method: Method::GET,
        path: "/orders/7".into(),
        headers: HeaderMap::new(),
    };
    if !head.is_empty() {
        let mut lines = head.split(|b| *b == b'\n');
        let (method, target) = split_once(lines.next()?, b' ')?;
        req.method = Method::from_bytes(method).ok()?;
        req.path = PathAndQuery::try_from(target).ok()?.path().to_string();
        for line in lines {
            let (name, value) = split_once(line, b':')?;
            let value = HeaderValue::from_bytes(value.trim_ascii()).ok()?;
            req.headers.append(HeaderName::from_bytes(name).ok()?, value);
        }
    }
    if !value.is_empty() {
        req.headers
            .append(header::AUTHORIZATION, authorization(f, value)?);
    }
    Some(req)
}

fn authorization(f: &Fixture, value: &[u8]) -> Option<HeaderValue> {
    let json = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).ok();
    let token = if let Some(claims) = value.strip_prefix(b"sign:") {
        f.es256.sign(&json(claims)?)
    } else if let Some(claims) = value.strip_prefix(b"sign-rs256:") {
        f.rs256.sign(&json(claims)?)
    } else if let Some(rest) = value.strip_prefix(b"sign-header:") {
        let (header, claims) = split_once(rest, b'\n')?;
        f.es256.sign_with_header(&json(header)?, &json(claims)?)
    } else {
        return HeaderValue::from_bytes(value).ok();
    };
    HeaderValue::from_str(&format!("Bearer {token}")).ok()
}

fn split_once(bytes: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|b| *b == at)?;
    Some((&bytes[..i], &bytes[i + 1..]))
}
