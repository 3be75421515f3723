//! The real binary at `trace` level: tokens (valid, forged, malformed) never reach a log line.

use serde_json::json;
use tollgate::devissuer::{DevIssuer, SigningKey};

use super::{World, config};
use crate::support::upstream::Upstream;
use crate::support::{Running, config_file, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_text_reaches_the_logs_even_at_trace_level() {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let upstream = Upstream::start().await;
    let (admin, listen) = (free_port(), free_port());
    let yaml = config(&issuer, &upstream, "")
        .replacen("listen: 127.0.0.1:0", &format!("listen: {admin}"), 1)
        .replacen("listen: 127.0.0.1:0", &format!("listen: {listen}"), 1);
    let file = config_file(&yaml);
    let mut running = Running::start_traced(&file.path);
    crate::support::wait_ready(admin).await;

    let valid = issuer.token(World::claims_for(&issuer));
    let stranger =
        SigningKey::generate_rsa(&issuer.signing_key().kid, jsonwebtoken::Algorithm::RS256).unwrap();
    let forged = stranger.sign(&World::claims_for(&issuer));
    let mut expired_claims = World::claims_for(&issuer);
    expired_claims["exp"] = json!(1);
    let expired = issuer.token(expired_claims);
    let garbage = "eyJhbGciOiJub25lIn0.c2VjcmV0LXBheWxvYWQtZG8tbm90LWxvZw.AAAA";
    let http = reqwest::Client::new();
    let url = format!("http://{listen}/orders/7");
    for token in [&valid, &forged, &expired, &garbage.to_string()] {
        let res = http.get(&url).bearer_auth(token).send().await.unwrap();
        if res.status() == 200 {
            continue; // the echo upstream shows the Authorization header it was given
        }
        let text = res.text().await.unwrap();
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!text.contains(part), "a token part was echoed in a body: {text}");
        }
    }

    let logs = running.stop_and_read().await;
    assert!(
        logs.contains("tollgate::access"),
        "access log lines expected:\n{logs}"
    );
    assert!(logs.contains("\"decision\":\"allow\""), "{logs}");
    for token in [&valid, &forged, &expired, &garbage.to_string()] {
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!logs.contains(part), "a token part reached the logs");
        }
    }
}
