//! An upstream that accepts `Upgrade: echo` with `101` and then echoes every byte, and a
//! raw client for it: enough to prove that protocol upgrades (WebSocket) pass through.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate::server::{self, ShutdownTrigger};

pub struct EchoUpgrade {
    pub addr: SocketAddr,
    _stop: ShutdownTrigger,
}

impl EchoUpgrade {
    pub async fn start() -> EchoUpgrade {
        let listener = server::bind("upgrade", "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, shutdown) = server::shutdown_channel();
        let make = |_conn| service_fn(answer);
        tokio::spawn(server::serve(
            "upgrade",
            listener,
            None,
            make,
            shutdown,
            Duration::from_millis(100),
        ));
        EchoUpgrade { addr, _stop: stop }
    }
}

async fn answer(mut req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let wants_echo = req.headers().get("upgrade").is_some_and(|v| v == "echo");
    if !wants_echo {
        let mut res = Response::new(Full::new(Bytes::from_static(b"no upgrade asked")));
        *res.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(res);
    }
    let seen = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .chars()
        .take(12)
        .collect::<String>();
    let upgraded = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(io) = upgraded.await {
            let mut io = hyper_util::rt::TokioIo::new(io);
            let mut buf = [0u8; 1024];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    res.headers_mut().insert("connection", "upgrade".parse().unwrap());
    res.headers_mut().insert("upgrade", "echo".parse().unwrap());
    res.headers_mut()
        .insert("x-seen-authorization", seen.parse().unwrap());
    Ok(res)
}

/// Send an upgrade request (`extra` are more header lines) and, when it is switched,
/// one message through the tunnel. Returns the response head and what came back.
pub async fn upgrade_and_echo(addr: SocketAddr, host: &str, extra: &str, message: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /orders/ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n{extra}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    if !head.starts_with("HTTP/1.1 101") {
        return (head, String::new());
    }
    stream.write_all(message.as_bytes()).await.unwrap();
    let mut back = vec![0u8; message.len()];
    let echoed = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back)).await;
    let echoed = match echoed {
        Ok(Ok(_)) => String::from_utf8_lossy(&back).to_string(),
        _ => String::new(),
    };
    (head, echoed)
}
