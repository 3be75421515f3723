//! The real binary at `trace` level: the client secret, the acquired token and the app's
//! own Authorization header never reach a log line.

use serde_json::Value;
use tollgate::devissuer::{ClientAuth, DevIssuer};

use super::{CLIENT, SECRET, bearer, config, write};
use crate::support::upstream::Upstream;
use crate::support::{Running, config_file, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_reaches_the_logs_even_at_trace_level() {
    let issuer = DevIssuer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    issuer.add_client(CLIENT, ClientAuth::Secret(SECRET.into()), &["Orders.Read"]);
    let upstream = Upstream::start().await;
    let (admin, listen) = (free_port(), free_port());
    let yaml = config(
        &issuer,
        &upstream,
        "client_secret: { file: secret, method: post }",
    )
    .replacen("listen: 127.0.0.1:0", &format!("listen: {admin}"), 1)
    .replacen("listen: 127.0.0.1:0", &format!("listen: {listen}"), 1);
    let file = config_file(&yaml);
    write(file.path.parent().unwrap(), "secret", SECRET);
    let mut running = Running::start_traced(&file.path);
    crate::support::wait_ready(admin).await;

    let app_token = "app-made-up-token-Zq81xT";
    let res = reqwest::Client::new()
        .get(format!("http://{listen}/orders/1"))
        .header("host", "orders.internal")
        .header("authorization", format!("Bearer {app_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    let token = bearer(&echo);
    let token = token.trim_start_matches("Bearer ");
    assert!(token.len() > 100);

    let logs = running.stop_and_read().await;
    assert!(logs.contains("token acquired"), "{logs}");
    assert!(logs.contains("\"side\":\"outbound\""), "{logs}");
    assert!(logs.contains("\"decision\":\"forward\""), "{logs}");
    assert!(logs.contains(&format!("\"client_id\":\"{CLIENT}\"")), "{logs}");
    assert!(!logs.contains(SECRET), "the client secret reached the logs");
    let encoded_secret: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    assert!(
        !logs.contains(&encoded_secret),
        "the form-encoded secret reached the logs"
    );
    assert!(!logs.contains(app_token), "the app's token reached the logs");
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(
            !logs.contains(part),
            "a part of the acquired token reached the logs"
        );
    }
}
