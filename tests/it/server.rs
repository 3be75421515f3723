//! Graceful shutdown of a listener: in-flight requests finish, new connections are refused.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use tollgate::server;

async fn slow(
    _req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(hyper::Response::new(Full::new(Bytes::from_static(b"done"))))
}

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_and_new_ones_are_refused() {
    let listener = server::bind("test", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, shutdown) = server::shutdown_channel();
    let serving = tokio::spawn(server::serve(
        "test",
        listener,
        None,
        |_| service_fn(slow),
        shutdown,
        Duration::from_secs(5),
    ));
    let client = reqwest::Client::new();
    let in_flight = tokio::spawn(client.get(format!("http://{addr}/")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    trigger.trigger();
    let res = in_flight.await.unwrap().expect("in-flight request completes");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("drained")
        .unwrap();
    let refused = reqwest::Client::new().get(format!("http://{addr}/")).send().await;
    assert!(refused.is_err(), "the listener is closed after shutdown");
}

#[tokio::test]
async fn the_drain_timeout_bounds_the_wait() {
    let listener = server::bind("test", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, shutdown) = server::shutdown_channel();
    let never = |_req: hyper::Request<hyper::body::Incoming>| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
    };
    let serving = tokio::spawn(server::serve(
        "test",
        listener,
        None,
        move |_| service_fn(never),
        shutdown,
        Duration::from_millis(200),
    ));
    let _stuck = tokio::spawn(reqwest::Client::new().get(format!("http://{addr}/")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("serve returns after the drain timeout")
        .unwrap();
}
