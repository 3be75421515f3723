use super::*;

fn head(raw: &str) -> Result<Option<ResponseHead>, ResponseError> {
    read_head(&mut BytesMut::from(raw), false)
}

fn framing_of(raw: &str) -> Result<Framing, ResponseError> {
    head(raw).map(|h| h.expect("complete").framing)
}

/// The whole body of `raw` (after its head), fed `step` bytes at a time, then closed.
fn body(raw: &[u8], step: usize) -> Result<(Vec<u8>, Option<HeaderMap>, usize), ResponseError> {
    let mut buf = BytesMut::new();
    let mut input = raw;
    let head = loop {
        if let Some(head) = read_head(&mut buf, false)? {
            break head;
        }
        assert!(!input.is_empty(), "head incomplete");
        let n = step.min(input.len());
        buf.extend_from_slice(&input[..n]);
        input = &input[n..];
    };
    let mut decoder = BodyDecoder::new(head.framing);
    let (mut data, mut trailers) = (Vec::new(), None);
    loop {
        match decoder.decode(&mut buf, input.is_empty())? {
            Decoded::Data(d) => data.extend_from_slice(&d),
            Decoded::Trailers(t) => trailers = Some(t),
            Decoded::End => return Ok((data, trailers, buf.len() + input.len())),
            Decoded::More => {
                let n = step.min(input.len());
                buf.extend_from_slice(&input[..n]);
                input = &input[n..];
            }
        }
    }
}

#[test]
fn a_head_is_read_with_its_fields_status_and_version() {
    let h = head("HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap()
        .unwrap();
    assert_eq!(h.status, StatusCode::CREATED);
    assert_eq!(h.version, Version::HTTP_11);
    assert_eq!(h.headers["content-type"], "text/plain");
    let xa: Vec<_> = h.headers.get_all("x-a").iter().collect();
    assert_eq!(xa, ["1", "2"]);
    assert_eq!(h.framing, Framing::Length(5));
    assert!(h.keep_alive);
}

#[test]
fn a_partial_head_asks_for_more_and_consumes_nothing() {
    let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Len");
    assert!(read_head(&mut buf, false).unwrap().is_none());
    assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\nContent-Len");
}

#[test]
fn interim_heads_are_skipped_and_101_is_refused() {
    let mut buf = BytesMut::from(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    let h = read_head(&mut buf, false).unwrap().unwrap();
    assert_eq!(h.status, StatusCode::OK);
    assert!(h.headers.get("link").is_none());
    assert_eq!(&buf[..], b"ok");
    // An interim head alone is consumed; the final one is awaited.
    let mut buf = BytesMut::from("HTTP/1.1 100 Continue\r\n\r\n");
    assert!(read_head(&mut buf, false).unwrap().is_none());
    assert!(buf.is_empty());
    assert!(matches!(
        head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
        Err(ResponseError::Malformed(_))
    ));
}

#[test]
fn framing_follows_rfc_9112() {
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Ok(Framing::Empty)
    );
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n"),
        Ok(Framing::Length(7))
    );
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length:  7 \r\n\r\n"),
        Ok(Framing::Length(7))
    );
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"),
        Ok(Framing::Chunked)
    );
    assert_eq!(framing_of("HTTP/1.1 200 OK\r\n\r\n"), Ok(Framing::UntilClose));
    // No body whatever the fields say.
    assert_eq!(
        framing_of("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
        Ok(Framing::Empty)
    );
    assert_eq!(
        framing_of("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Ok(Framing::Empty)
    );
    let h = read_head(
        &mut BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"),
        true,
    )
    .unwrap()
    .unwrap();
    assert_eq!(h.framing, Framing::Empty);
    assert_eq!(h.headers["content-length"], "9");
}

#[test]
fn ambiguous_framing_is_refused() {
    for raw in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert!(matches!(head(raw), Err(ResponseError::Ambiguous(_))), "{raw:?}");
    }
}

#[test]
fn malformed_heads_are_refused() {
    for raw in [
        "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Space : a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Bad\0: a\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
    ] {
        assert!(matches!(head(raw), Err(ResponseError::Malformed(_))), "{raw:?}");
    }
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
    assert!(matches!(
        head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")),
        Err(ResponseError::Malformed(_))
    ));
}

#[test]
fn an_oversized_head_is_refused_complete_or_not() {
    let big = "a".repeat(MAX_HEAD_BYTES);
    assert_eq!(
        head(&format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\n\r\n")).err(),
        Some(ResponseError::HeadTooLarge)
    );
    assert_eq!(
        head(&format!("HTTP/1.1 200 OK\r\nX-Big: {big}")).err(),
        Some(ResponseError::HeadTooLarge)
    );
}

#[test]
fn connection_reuse_needs_http_11_without_close_and_a_framed_body() {
    let keep = |raw: &str| head(raw).unwrap().unwrap().keep_alive;
    assert!(keep("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"));
    assert!(keep("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
    assert!(!keep(
        "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\n"
    ));
    assert!(!keep(
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n"
    ));
    assert!(!keep("HTTP/1.1 200 OK\r\n\r\n"));
}

#[test]
fn bodies_read_the_same_whole_or_a_byte_at_a_time() {
    // (response, body, a trailer)
    type Case<'a> = (&'a str, &'a [u8], Option<(&'a str, &'a str)>);
    let cases: [Case; 5] = [
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"hello",
            None,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"hello",
            None,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\nhe\r\nA\r\nllo world\n\r\n0\r\ngrpc-status: 0\r\n\r\n",
            b"hello world\n",
            Some(("grpc-status", "0")),
        ),
        ("HTTP/1.1 200 OK\r\n\r\nuntil close", b"until close", None),
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"", None),
    ];
    for (raw, want, trailer) in cases {
        for step in [1, 2, 3, 7, usize::MAX] {
            let (data, trailers, left) = body(raw.as_bytes(), step).unwrap();
            assert_eq!(data, want, "{raw:?} step {step}");
            assert_eq!(left, 0);
            match trailer {
                Some((k, v)) => assert_eq!(trailers.unwrap()[k], v),
                None => assert!(trailers.is_none()),
            }
        }
    }
}

#[test]
fn bytes_after_a_framed_body_are_left_unread() {
    let (data, _, left) = body(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
        usize::MAX,
    )
    .unwrap();
    assert_eq!(data, b"ok");
    assert_eq!(left, 19);
    let (_, _, left) = body(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nextra",
        usize::MAX,
    )
    .unwrap();
    assert_eq!(left, 5);
}

#[test]
fn malformed_chunked_bodies_are_refused() {
    for chunks in [
        "x\r\n",
        "\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5\r\nhelloX\r\n0\r\n\r\n",
        "5\r\nhello\rX0\r\n\r\n",
        "5\rX",
        "5;ext\nhello",
        "-5\r\n",
        "0x5\r\n",
        "11111111111111111\r\n",
        "0\r\nbad trailer\r\n\r\n",
    ] {
        let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}");
        assert!(
            matches!(body(raw.as_bytes(), 1), Err(ResponseError::BadChunk(_))),
            "{chunks:?}"
        );
        assert!(
            matches!(body(raw.as_bytes(), usize::MAX), Err(ResponseError::BadChunk(_))),
            "{chunks:?}"
        );
    }
    // The largest size 16 hex digits can say is a size, not an overflow.
    let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab";
    let mut buf = BytesMut::from(raw);
    let h = read_head(&mut buf, false).unwrap().unwrap();
    let mut d = BodyDecoder::new(h.framing);
    assert_eq!(
        d.decode(&mut buf, false),
        Ok(Decoded::Data(Bytes::from_static(b"ab")))
    );
}

#[test]
fn chunk_lines_and_trailers_are_bounded() {
    let long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(MAX_CHUNK_LINE));
    let long_trailer = format!("0\r\nx-t: {}\r\n\r\n", "t".repeat(MAX_TRAILER_BYTES));
    for chunks in [long_ext, long_trailer] {
        let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}");
        assert!(matches!(
            body(raw.as_bytes(), 512),
            Err(ResponseError::BadChunk(_))
        ));
        assert!(matches!(
            body(raw.as_bytes(), usize::MAX),
            Err(ResponseError::BadChunk(_))
        ));
    }
}

#[test]
fn a_body_cut_short_by_the_connection_is_an_error() {
    for raw in [
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nx-t: 1\r\n",
    ] {
        assert!(
            matches!(body(raw.as_bytes(), usize::MAX), Err(ResponseError::BadChunk(_))),
            "{raw:?}"
        );
    }
}

#[test]
fn request_heads_carry_the_fields_and_tollgates_own_framing() {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("up:8080"));
    headers.append("x-a", HeaderValue::from_static("1"));
    headers.append("x-a", HeaderValue::from_static("2"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
    headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
    let mut out = Vec::new();
    write_request_head(
        &mut out,
        &Method::POST,
        "/a?b=c",
        &headers,
        RequestFraming::Length(3),
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "POST /a?b=c HTTP/1.1\r\nhost: up:8080\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 3\r\n\r\n"
    );
    let bare = |method: Method, framing| {
        let mut out = Vec::new();
        write_request_head(&mut out, &method, "/", &HeaderMap::new(), framing);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(bare(Method::GET, RequestFraming::None), "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(
        bare(Method::PUT, RequestFraming::Chunked),
        "PUT / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
    );
}

#[test]
fn request_framing_keeps_the_declared_length_or_chunks() {
    let mut declared = HeaderMap::new();
    declared.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    assert_eq!(
        request_framing(&HeaderMap::new(), true, Some(0)),
        RequestFraming::None
    );
    assert_eq!(
        request_framing(&declared, true, Some(0)),
        RequestFraming::Length(0)
    );
    assert_eq!(
        request_framing(&declared, false, Some(12)),
        RequestFraming::Length(12)
    );
    assert_eq!(
        request_framing(&HeaderMap::new(), false, None),
        RequestFraming::Chunked
    );
}

#[test]
fn chunks_are_written_with_hex_sizes_and_trailers() {
    let mut out = Vec::new();
    write_chunk(&mut out, b"hello");
    write_chunk(&mut out, &[b'x'; 26]);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    write_last_chunk(&mut out, Some(&trailers));
    let want = format!(
        "5\r\nhello\r\n1a\r\n{}\r\n0\r\ngrpc-status: 0\r\n\r\n",
        "x".repeat(26)
    );
    assert_eq!(String::from_utf8(out).unwrap(), want);
    // What tollgate writes, its own reader reads back.
    let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{want}");
    let (data, trailers, _) = body(raw.as_bytes(), 3).unwrap();
    assert_eq!(data.len(), 31);
    assert_eq!(trailers.unwrap()["grpc-status"], "0");
}
