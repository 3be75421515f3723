//! A real nginx (Debian's package) on loopback with `auth_request` pointing at tollgate's
//! decision listener and `proxy_pass` to the echo upstream. Skipped, loudly, when nginx is
//! not installed, unless `TOLLGATE_REQUIRE_NGINX=1` (CI) makes that a failure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::Setup;
use crate::support::free_port;
use crate::support::upstream::seen;

struct Nginx {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// `deploy/proxies/nginx.conf` (the snippet the README shows) in a server on loopback,
/// its ports replaced by the test's.
fn config(dir: &Path, listen: SocketAddr, decision: SocketAddr, upstream: SocketAddr) -> String {
    let d = dir.display();
    let snippet = std::fs::read_to_string(crate::support::repo_path("deploy/proxies/nginx.conf"))
        .expect("deploy/proxies/nginx.conf")
        .replace("127.0.0.1:9191", &decision.to_string())
        .replace("127.0.0.1:8081", &upstream.to_string());
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen {listen};
{snippet}
  }}
}}
"#
    )
}

async fn start(s: &Setup, decision: SocketAddr) -> Option<Nginx> {
    let Some(binary) = nginx_binary() else {
        let required = std::env::var("TOLLGATE_REQUIRE_NGINX").is_ok_and(|v| v == "1");
        assert!(!required, "TOLLGATE_REQUIRE_NGINX=1 but nginx is not installed");
        eprintln!(
            "SKIPPED: nginx is not installed (apt-get install nginx-light); the auth_request test did not run"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let file = dir.path().join("nginx.conf");
    std::fs::write(&file, config(dir.path(), addr, decision, s.upstream.addr)).unwrap();
    let child = Command::new(binary)
        .arg("-c")
        .arg(&file)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let nginx = Nginx {
        child,
        addr,
        _dir: dir,
    };
    crate::support::get_when_up(&format!("http://{addr}/healthz")).await;
    Some(nginx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_enforces_tollgates_decision() {
    let s = Setup::new("").await;
    let decision = s.tollgate.decision.unwrap();
    let Some(nginx) = start(&s, decision).await else {
        return;
    };
    let url = |path: &str| format!("http://{}{path}", nginx.addr);

    let reader = s.token("2", &["Orders.Read"]);
    let res = s
        .http
        .get(url("/orders/7?x=1"))
        .bearer_auth(&reader)
        .header("X-Client-Id", "forged-by-client")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let echo: Value = res.json().await.unwrap();
    assert_eq!(
        seen(&echo, "x-client-id"),
        [crate::inbound::CERT_CLIENT],
        "not the client's copy"
    );
    assert_eq!(seen(&echo, "x-client-roles"), ["Orders.Read"]);
    assert_eq!(echo["path"], "/orders/7?x=1");

    let before = s.upstream.requests();
    let res = s
        .http
        .get(url("/admin/users"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let www = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        www.as_deref()
            .is_some_and(|w| w.contains(r#"error="insufficient_scope""#)),
        "tollgate's challenge reaches the client: {www:?}"
    );
    let res = s.http.get(url("/orders/7")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="tollgate""#);
    let res = s
        .http
        .get(url("/orders/7"))
        .bearer_auth(&reader)
        .header("X-HTTP-Method-Override", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "a request tollgate refuses as malformed is a 403 through nginx"
    );
    assert_eq!(
        s.upstream.requests(),
        before,
        "nothing refused reached the upstream"
    );

    // tollgate down: nginx fails closed with a 500.
    drop(s.tollgate);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let res = s
        .http
        .get(url("/orders/7"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(s.upstream.requests(), before);
}
