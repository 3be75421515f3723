//! The token cache: one request at cold start, refresh before expiry without making
//! requests wait, serving through an IdP outage until expiry, then 503, then recovery.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate::devissuer::Behaviour;

use super::{World, bearer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_at_cold_start_cause_one_token_request() {
    let w = World::with_behaviour(
        Behaviour {
            delay: Duration::from_millis(300),
            ..Behaviour::default()
        },
        false,
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let http = w.http.clone();
        let url = w.tollgate.outbound_url(&format!("/orders/{i}"));
        tasks.spawn(async move {
            let res = http
                .get(url)
                .header("host", "orders.internal")
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let mut tokens = BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        let (status, echo) = r.unwrap();
        assert_eq!(status, 200, "{echo}");
        tokens.insert(bearer(&echo));
    }
    assert_eq!(w.issuer.token_requests().len(), 1, "exactly one token request");
    assert_eq!(tokens.len(), 1, "every request carried the same token");
    assert!(tokens.iter().all(|t| t.starts_with("Bearer ey")));
    let metrics = w.tollgate.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_token_requests_total{credential="orders-api",result="ok"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"tollgate_outbound_requests_total{route="orders",status="200"} 200"#));
    assert!(metrics.contains(r#"tollgate_token_expiry_timestamp_seconds{credential="orders-api"}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_are_refreshed_before_expiry_and_requests_never_wait() {
    let delay = Duration::from_millis(800);
    let w = World::with_behaviour(
        Behaviour {
            lifetime: Duration::from_secs(4),
            delay,
            ..Behaviour::default()
        },
        true,
    )
    .await;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut tokens = BTreeSet::new();
    let mut count = 0;
    while started.elapsed() < Duration::from_secs(7) {
        let t = Instant::now();
        let res = w.get("/orders/1").await;
        let took = t.elapsed();
        assert_eq!(res.status(), 200);
        tokens.insert(bearer(&res.json::<Value>().await.unwrap()));
        slowest = slowest.max(took);
        count += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(count > 50, "{count} requests");
    assert!(
        slowest < delay * 3 / 4,
        "a request waited for a token fetch: slowest {slowest:?} vs injected delay {delay:?}"
    );
    // Refreshed at 2/3 of the 4 s lifetime: the warm-up token plus at least two more.
    let issued = w.tokens_issued();
    assert!(issued >= 3, "{issued} token requests in 7 s of 4 s tokens");
    assert!(tokens.len() >= 2, "the upstream saw refreshed tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_outage_serves_the_current_token_until_expiry_then_503_then_recovers() {
    let w = World::with_behaviour(
        Behaviour {
            lifetime: Duration::from_secs(3),
            ..Behaviour::default()
        },
        true,
    )
    .await;
    let ready_at = Instant::now();
    w.issuer.set_available(false);

    // Until the token expires (3 s after it was requested), requests still go through.
    let mut first_503 = None;
    while ready_at.elapsed() < Duration::from_secs(6) {
        let res = w.get("/orders/1").await;
        match res.status().as_u16() {
            200 => assert!(first_503.is_none(), "no 200 between 503s without the IdP"),
            503 => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"], "token_unavailable", "{body}");
                assert_eq!(body["credential"], "orders-api", "{body}");
                let text = body.to_string();
                assert!(text.contains("orders-api") && text.contains("503"), "{text}");
                assert!(!text.contains(super::SECRET), "{text}");
                first_503 = Some(ready_at.elapsed());
                break;
            }
            other => panic!("unexpected status {other}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_503 = first_503.expect("503 once the token expired");
    assert!(
        first_503 > Duration::from_millis(1500),
        "served until near expiry: {first_503:?}"
    );

    w.issuer.set_available(true);
    let back = Instant::now();
    loop {
        let res = w.get("/orders/1").await;
        if res.status() == 200 {
            break;
        }
        assert_eq!(res.status(), 503);
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "no recovery after the IdP returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = w.tollgate.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_token_requests_total{credential="orders-api",result="error"}"#),
        "{metrics}"
    );
}
