//! `upstream`: tollgate's reading of an upstream's HTTP/1.1 response. The first byte
//! chooses whether the request was `HEAD` (its low bit) and how many bytes arrive at a time
//! (the rest of it, plus one); the other bytes are what the upstream sent, then it closes.
//!
//! Read in those pieces or whole, the outcome is the same: the same head, the same body
//! bytes, the same trailers, the same bytes left after the response, or a refusal both
//! ways. A body never reaches past its framing: a `Content-Length` body is exactly that
//! long, and head, body and what is left add up to what was sent (what the upstream
//! sends after a response must never be read as part of it, nor skipped).
#![no_main]

use bytes::BytesMut;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use tollgate::proxy::http1::{BodyDecoder, Decoded, Framing, read_head};

#[derive(Debug, PartialEq)]
struct Read {
    status: u16,
    headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
    head_bytes: usize,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
    left: usize,
}

/// `input` read `step` bytes at a time; `None` when refused.
fn read(input: &[u8], step: usize, head_request: bool) -> Option<Read> {
    let mut buf = BytesMut::new();
    let mut rest = input;
    let feed = |buf: &mut BytesMut, rest: &mut &[u8]| {
        let n = step.min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        *rest = &rest[n..];
    };
    let head = loop {
        if let Some(head) = read_head(&mut buf, head_request).ok()? {
            break head;
        }
        if rest.is_empty() {
            return None; // closed before a whole head
        }
        feed(&mut buf, &mut rest);
    };
    let head_bytes = input.len() - rest.len() - buf.len();
    let mut decoder = BodyDecoder::new(head.framing);
    let (mut body, mut trailers) = (Vec::new(), None);
    loop {
        match decoder.decode(&mut buf, rest.is_empty()).ok()? {
            Decoded::Data(d) => {
                assert!(!d.is_empty(), "an empty data frame");
                body.extend_from_slice(&d);
            }
            Decoded::Trailers(t) => trailers = Some(t),
            Decoded::End => break,
            Decoded::More => {
                assert!(!rest.is_empty(), "more asked for after the close");
                feed(&mut buf, &mut rest);
            }
        }
    }
    assert!(decoder.is_done());
    Some(Read {
        status: head.status.as_u16(),
        headers: head.headers,
        framing: head.framing,
        keep_alive: head.keep_alive,
        head_bytes,
        body,
        trailers,
        left: buf.len() + rest.len(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, sent)) = data.split_first() else { return };
    let head_request = first & 1 == 1;
    let step = usize::from(first >> 1) + 1;
    let whole = read(sent, usize::MAX, head_request);
    let pieces = read(sent, step, head_request);
    assert_eq!(whole, pieces, "read whole and {step} bytes at a time differ");
    if let Some(r) = whole {
        let read = r.head_bytes + r.body.len() + r.left;
        match r.framing {
            Framing::Length(n) => assert_eq!(r.body.len() as u64, n),
            Framing::Empty => assert!(r.body.is_empty()),
            Framing::UntilClose => assert_eq!(r.left, 0),
            Framing::Chunked => assert!(read <= sent.len()),
        }
        if r.framing != Framing::Chunked {
            assert_eq!(read, sent.len(), "bytes read twice or skipped");
        }
        if r.keep_alive {
            assert_ne!(r.framing, Framing::UntilClose);
        }
    }
});
