//! HTTP/1.1 as tollgate speaks it to a plain-`http` upstream (RFC 9112), without I/O:
//! the request head it writes, and the response head and body framing it reads.
//!
//! Reading is strict, because a response read with the wrong length would hand the rest
//! of it to the next caller on the same connection. A response whose length is ambiguous
//! (`Content-Length` with `Transfer-Encoding`, lengths that disagree, a transfer coding
//! other than `chunked`) is refused, as are obsolete line folding, a space before a
//! header's colon, a malformed chunk and a head or trailer section past its bound. A
//! connection carries another request only when the response ended exactly where its
//! framing said (see [`crate::proxy`]'s pool).

use std::io::Write;
use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

/// A response head larger than this is refused (nginx's own default is 4–8 KiB).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Header fields in a response head, at most.
pub const MAX_HEADERS: usize = 128;
/// Fields a response head usually has at most; more take an allocation.
const FEW_HEADERS: usize = 24;
/// Bytes of one chunk-size line (size and extensions), at most.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Bytes of a chunked body's trailer section, at most.
const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Why an upstream's response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the response head is larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("the response head is malformed: {0}")]
    Malformed(&'static str),
    #[error("the response framing is ambiguous: {0}")]
    Ambiguous(&'static str),
    #[error("the response body is malformed: {0}")]
    BadChunk(&'static str),
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: `HEAD`, 204, 304, or `Content-Length: 0`.
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// A final response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The upstream may take another request on this connection after this response:
    /// HTTP/1.1, no `Connection: close`, and a body that ends by its framing.
    pub keep_alive: bool,
}

/// How a request body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body and no framing header.
    None,
    Length(u64),
    Chunked,
}

/// The framing to send a request body with: the exact length when it is known (what the
/// client declared, or nothing for a body-less request that declared nothing), else chunked.
pub fn request_framing(headers: &HeaderMap, end_stream: bool, exact: Option<u64>) -> RequestFraming {
    if end_stream {
        if headers.contains_key(header::CONTENT_LENGTH) {
            RequestFraming::Length(0)
        } else {
            RequestFraming::None
        }
    } else {
        match exact {
            Some(n) => RequestFraming::Length(n),
            None => RequestFraming::Chunked,
        }
    }
}

/// Append a request head: `method target HTTP/1.1`, the fields of `headers` but any
/// `Content-Length`/`Transfer-Encoding`, then the framing's own field. Method, target and
/// fields are already valid (`http` refuses CR, LF and NUL in them), so nothing can be
/// injected.
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    framing: RequestFraming,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let fields = headers
        .iter()
        .filter(|(name, _)| *name != header::CONTENT_LENGTH && *name != header::TRANSFER_ENCODING);
    write_fields(out, fields);
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Append one chunk of a chunked request body (`data` not empty).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Append the end of a chunked request body, with `trailers` if any.
pub fn write_last_chunk(out: &mut Vec<u8>, trailers: Option<&HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    write_fields(out, trailers.into_iter().flatten());
    out.extend_from_slice(b"\r\n");
}

/// Append `name: value` lines.
fn write_fields<'a>(out: &mut Vec<u8>, fields: impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)>) {
    for (name, value) in fields {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Take the final response head from the front of `buf`, skipping interim (1xx) ones.
/// `Ok(None)`: the head is not complete yet (whatever interim heads were complete are
/// consumed). `head_request`: the request was `HEAD`, so the response has no body.
pub fn read_head(buf: &mut BytesMut, head_request: bool) -> Result<Option<ResponseHead>, ResponseError> {
    loop {
        // Where each field's name and value sit in the head, to share its bytes once it is
        // split off; on the stack for the usual few fields.
        let mut few = [(0u32, 0u32, 0u32, 0u32); FEW_HEADERS];
        let mut many = Vec::new();
        let (code, version, len, fields) = {
            let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut response,
                buf,
                &mut slots,
            );
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
                    return Err(ResponseError::HeadTooLarge);
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(ResponseError::Malformed("too many header fields"));
                }
                Err(_) => return Err(ResponseError::Malformed("not an HTTP/1.x response head")),
            };
            if len > MAX_HEAD_BYTES {
                return Err(ResponseError::HeadTooLarge);
            }
            let code = response.code.unwrap_or(0);
            let version = match response.version {
                Some(1) => Version::HTTP_11,
                _ => Version::HTTP_10,
            };
            let fields = if response.headers.len() <= FEW_HEADERS {
                &mut few[..response.headers.len()]
            } else {
                many.resize(response.headers.len(), (0, 0, 0, 0));
                &mut many[..]
            };
            // Offsets fit in u32: the head is at most MAX_HEAD_BYTES.
            let base = buf.as_ptr() as usize;
            for (slot, h) in fields.iter_mut().zip(response.headers.iter()) {
                let name = (h.name.as_ptr() as usize - base) as u32;
                let value = (h.value.as_ptr() as usize - base) as u32;
                *slot = (
                    name,
                    name + h.name.len() as u32,
                    value,
                    value + h.value.len() as u32,
                );
            }
            (code, version, len, fields)
        };
        let head = buf.split_to(len).freeze();
        if (100..200).contains(&code) {
            if code == 101 {
                return Err(ResponseError::Malformed(
                    "101 Switching Protocols without an upgrade asked for",
                ));
            }
            continue;
        }
        let status = StatusCode::from_u16(code).map_err(|_| ResponseError::Malformed("status code"))?;
        let mut headers = HeaderMap::with_capacity(fields.len());
        for &(ns, ne, vs, ve) in fields.iter() {
            let name = HeaderName::from_bytes(&head[ns as usize..ne as usize])
                .map_err(|_| ResponseError::Malformed("header name"))?;
            let value = HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize))
                .map_err(|_| ResponseError::Malformed("header value"))?;
            headers.append(name, value);
        }
        let framing = framing(&headers, status, version, head_request)?;
        let close = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        let keep_alive = version == Version::HTTP_11 && !close && framing != Framing::UntilClose;
        return Ok(Some(ResponseHead {
            status,
            version,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// RFC 9112 §6.3, refusing what it calls ambiguous rather than guessing.
fn framing(
    headers: &HeaderMap,
    status: StatusCode,
    version: Version,
    head_request: bool,
) -> Result<Framing, ResponseError> {
    let mut length: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let n = decimal(part.trim_ascii())
                .ok_or(ResponseError::Ambiguous("Content-Length is not a number"))?;
            if length.is_some_and(|l| l != n) {
                return Err(ResponseError::Ambiguous("Content-Length values differ"));
            }
            length = Some(n);
        }
    }
    // `Some(true)` only for exactly one coding, `chunked`.
    let mut codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty());
    let chunked = codings
        .next()
        .map(|first| first.eq_ignore_ascii_case(b"chunked") && codings.next().is_none());
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    match (chunked, length) {
        (Some(_), Some(_)) => Err(ResponseError::Ambiguous(
            "both Content-Length and Transfer-Encoding",
        )),
        (Some(_), None) if version == Version::HTTP_10 => {
            Err(ResponseError::Ambiguous("Transfer-Encoding in HTTP/1.0"))
        }
        (Some(true), None) => Ok(Framing::Chunked),
        (Some(false), None) => Err(ResponseError::Ambiguous("a transfer coding other than chunked")),
        (None, Some(0)) => Ok(Framing::Empty),
        (None, Some(n)) => Ok(Framing::Length(n)),
        (None, None) => Ok(Framing::UntilClose),
    }
}

/// Digits only, no sign, no overflow.
fn decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// What a body decoder gives next.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    Trailers(HeaderMap),
    /// The body ended where its framing said.
    End,
    /// More bytes are needed.
    More,
}

/// Reads a response body out of the connection's read buffer.
#[derive(Debug)]
pub struct BodyDecoder {
    state: BodyState,
}

#[derive(Debug)]
enum BodyState {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(FIRST_SIZE),
            Framing::UntilClose => BodyState::UntilClose,
        };
        BodyDecoder { state }
    }

    /// The body has been read to its end.
    pub fn is_done(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    /// Bytes of body still to come, when the framing says.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            BodyState::Length(n) => Some(n),
            BodyState::Done => Some(0),
            _ => None,
        }
    }

    /// The next part of the body from `buf`; `eof`: the upstream closed and `buf` holds all
    /// there will be.
    pub fn decode(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Decoded, ResponseError> {
        match &mut self.state {
            BodyState::Done => Ok(Decoded::End),
            BodyState::Length(left) => {
                if buf.is_empty() {
                    return if eof {
                        Err(ResponseError::BadChunk(
                            "the connection closed before Content-Length bytes came",
                        ))
                    } else {
                        Ok(Decoded::More)
                    };
                }
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                *left -= n as u64;
                if *left == 0 {
                    self.state = BodyState::Done;
                }
                Ok(Decoded::Data(buf.split_to(n).freeze()))
            }
            BodyState::UntilClose => {
                if !buf.is_empty() {
                    Ok(Decoded::Data(buf.split().freeze()))
                } else if eof {
                    self.state = BodyState::Done;
                    Ok(Decoded::End)
                } else {
                    Ok(Decoded::More)
                }
            }
            BodyState::Chunked(chunked) => {
                let decoded = chunked.decode(buf)?;
                match decoded {
                    Decoded::End => self.state = BodyState::Done,
                    Decoded::Trailers(_) => self.state = BodyState::Done,
                    Decoded::More if eof => {
                        return Err(ResponseError::BadChunk(
                            "the connection closed inside a chunked body",
                        ));
                    }
                    _ => {}
                }
                Ok(decoded)
            }
        }
    }
}

/// Where a chunked body's reader stands (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy)]
enum Chunked {
    /// Inside a line read byte by byte: a chunk's size line, or the CRLF after its data.
    Line(Line),
    /// Bytes of the current chunk's data still to come.
    Data(u64),
    /// After the last chunk: the trailer section, up to and with its empty line.
    Trailers,
}

#[derive(Debug, Clone, Copy)]
enum Line {
    /// The hex size: its value, digits so far, bytes of the line so far.
    Size {
        size: u64,
        digits: u8,
        line: usize,
    },
    /// Chunk extensions, which are skipped.
    Extension {
        size: u64,
        line: usize,
    },
    /// The size line's CR was read; its LF is next.
    SizeLf {
        size: u64,
    },
    DataCr,
    DataLf,
}

const FIRST_SIZE: Chunked = Chunked::Line(Line::Size {
    size: 0,
    digits: 0,
    line: 0,
});

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ResponseError> {
        loop {
            let line = match *self {
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    *self = match left - n as u64 {
                        0 => Chunked::Line(Line::DataCr),
                        left => Chunked::Data(left),
                    };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                Chunked::Trailers => return trailers(buf),
                Chunked::Line(line) => line,
            };
            let Some(&b) = buf.first() else {
                return Ok(Decoded::More);
            };
            buf.advance(1);
            *self = line.next(b)?;
        }
    }
}

impl Line {
    /// The state after byte `b`.
    fn next(self, b: u8) -> Result<Chunked, ResponseError> {
        let bad = |why| Err(ResponseError::BadChunk(why));
        let line = match self {
            Line::Size { size, digits, line } => match (b as char).to_digit(16) {
                _ if line >= MAX_CHUNK_LINE => return bad("chunk-size line too long"),
                Some(_) if digits == 16 => return bad("chunk size too large"),
                Some(d) => Line::Size {
                    size: size << 4 | u64::from(d),
                    digits: digits + 1,
                    line: line + 1,
                },
                None if digits == 0 => return bad("chunk size missing"),
                None if b == b'\r' => Line::SizeLf { size },
                None if b == b';' || b == b' ' || b == b'\t' => Line::Extension { size, line: line + 1 },
                None => return bad("chunk size not hexadecimal"),
            },
            Line::Extension { size, line } => match b {
                _ if line >= MAX_CHUNK_LINE => return bad("chunk extensions too long"),
                b'\r' => Line::SizeLf { size },
                b'\n' => return bad("bare LF in a chunk-size line"),
                _ => Line::Extension { size, line: line + 1 },
            },
            Line::SizeLf { size } => match b {
                b'\n' if size == 0 => return Ok(Chunked::Trailers),
                b'\n' => return Ok(Chunked::Data(size)),
                _ => return bad("CR without LF after a chunk size"),
            },
            Line::DataCr => match b {
                b'\r' => Line::DataLf,
                _ => return bad("chunk data longer than its size"),
            },
            Line::DataLf => match b {
                b'\n' => return Ok(FIRST_SIZE),
                _ => return bad("CR without LF after chunk data"),
            },
        };
        Ok(Chunked::Line(line))
    }
}

/// The trailer section once it is complete: `End` for none, else the fields.
fn trailers(buf: &mut BytesMut) -> Result<Decoded, ResponseError> {
    if buf.starts_with(b"\r\n") {
        buf.advance(2);
        return Ok(Decoded::End);
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete((len, fields))) => {
            let mut map = HeaderMap::with_capacity(fields.len());
            for f in fields {
                let name = HeaderName::from_bytes(f.name.as_bytes())
                    .map_err(|_| ResponseError::BadChunk("trailer name"))?;
                let value =
                    HeaderValue::from_bytes(f.value).map_err(|_| ResponseError::BadChunk("trailer value"))?;
                map.append(name, value);
            }
            buf.advance(len);
            if len > MAX_TRAILER_BYTES {
                return Err(ResponseError::BadChunk("trailer section too large"));
            }
            Ok(Decoded::Trailers(map))
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_TRAILER_BYTES => {
            Err(ResponseError::BadChunk("trailer section too large"))
        }
        Ok(httparse::Status::Partial) => Ok(Decoded::More),
        Err(_) => Err(ResponseError::BadChunk("malformed trailer section")),
    }
}

#[cfg(test)]
mod tests;
