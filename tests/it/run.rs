//! `tollgate run` with an admin-only config: probes, metrics, graceful exit on signals.

use std::time::Duration;

use crate::support::{Running, config_file, free_port, get_when_up};

fn admin_config() -> (crate::support::ConfigFile, std::net::SocketAddr) {
    let addr = free_port();
    (
        config_file(&format!(
            "admin:\n  listen: {addr}\nshutdown:\n  drain_timeout_seconds: 2\n"
        )),
        addr,
    )
}

#[tokio::test]
async fn admin_endpoints_answer_on_a_running_sidecar() {
    let (file, addr) = admin_config();
    let _running = Running::start(&file.path);
    let (status, body) = get_when_up(&format!("http://{addr}/healthz")).await;
    assert_eq!((status, body.trim()), (200, "ok"));
    // Ready once the config is loaded (a loaded machine may answer 503 "loading" first).
    crate::support::wait_ready(addr).await;
    let (status, body) = get_when_up(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    assert!(body.contains("tollgate_config_generation 1"), "{body}");
    assert!(
        body.contains("tollgate_config_reloads_total{result=\"error\"} 0"),
        "{body}"
    );
    let (status, _) = get_when_up(&format!("http://{addr}/nope")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sigterm_and_sigint_exit_zero() {
    for signal in ["TERM", "INT"] {
        let (file, addr) = admin_config();
        let mut running = Running::start(&file.path);
        get_when_up(&format!("http://{addr}/healthz")).await;
        running.signal(signal);
        assert_eq!(
            running.wait_exit(Duration::from_secs(10)).await,
            Some(0),
            "SIG{signal}"
        );
    }
}

#[tokio::test]
async fn an_invalid_config_does_not_start() {
    let file = config_file("admin:\n  listen: nowhere\n");
    let mut running = Running::start(&file.path);
    assert_eq!(running.wait_exit(Duration::from_secs(10)).await, Some(1));
}
