//! `tollgate demo`: the whole loop on loopback, with no files, no network and no tenant.
//! A development issuer (discovery, JWKS, token endpoint with a secret client and a
//! certificate client), a "legacy" service that echoes the identity headers it received,
//! an inbound tollgate protecting it and an outbound tollgate in front; then a few
//! requests, each explained.

mod legacy;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{Config, ProcessEnv};
use crate::devissuer::{ClientAuth, ClientCertificate, DevIssuer, SigningKey, app_claims};
use crate::readiness::Readiness;
use crate::server::{self, ShutdownTrigger};
use crate::sidecar;

const AUDIENCE: &str = "api://legacy-orders";
const CERT_APP: &str = "2b50a014-f353-4c10-aace-024f19a55569";
const SECRET_APP: &str = "5a1c3e77-8d2b-4f4e-9c61-0d3b7f2a9e10";
const DEMO_SECRET: &str = "demo-secret-not-for-production";
const CERT_HOST: &str = "orders.cert-app.internal";
const SECRET_HOST: &str = "orders.secret-app.internal";
/// The certificate app calling the orders API as its signed-in user (on-behalf-of).
const USER_HOST: &str = "orders.as-user.internal";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo set-up: {0}")]
    Setup(String),
}

fn setup_err(e: impl std::fmt::Display) -> DemoError {
    DemoError::Setup(e.to_string())
}

/// Everything the demo started; dropping it stops them.
struct Stack {
    issuer: DevIssuer,
    legacy: SocketAddr,
    inbound: SocketAddr,
    inbound_admin: SocketAddr,
    outbound: SocketAddr,
    stops: Vec<ShutdownTrigger>,
    dir: PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for s in &self.stops {
            s.trigger();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Terminal styling, or none.
struct Style {
    colour: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    fn status(&self, status: u16) -> String {
        let code = if status < 300 { "32;1" } else { "31;1" };
        self.paint(code, &status.to_string())
    }
}

/// One request of the transcript.
struct Step {
    title: &'static str,
    why: &'static str,
    expect: u16,
}

/// Run the demo; `Ok(true)` when every decision was the expected one.
pub async fn run(keep_running: bool) -> Result<bool, DemoError> {
    let style = Style {
        colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let stack = start().await?;
    println!(
        "{}",
        style.bold("tollgate demo: app → outbound tollgate → inbound tollgate → legacy service")
    );
    println!(
        "{}",
        style.dim(&format!(
            "  development issuer {}   (for development only)\n  legacy service    http://{}   (no auth code at all)\n  inbound tollgate  http://{}   (validates tokens, enforces the policy)\n  outbound tollgate http://{}   (acquires tokens, attaches them)\n",
            stack.issuer.issuer(),
            stack.legacy,
            stack.inbound,
            stack.outbound
        ))
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(setup_err)?;
    let mut as_expected = 0;
    let steps = steps();
    for (i, step) in steps.iter().enumerate() {
        println!(
            "{} {}",
            style.bold(&format!("{}.", i + 1)),
            style.bold(step.title)
        );
        println!("   {}", style.dim(step.why));
        let (line, req) = request(&http, &stack, i);
        println!("   {line}");
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                println!("   request failed: {e}");
                continue;
            }
        };
        let status = res.status().as_u16();
        let www = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let verdict = if status < 300 { "allowed" } else { "refused" };
        println!("   → {} {verdict}", style.status(status));
        if status < 300 {
            let identity = &body["identity"];
            if let Some(map) = identity.as_object().filter(|m| !m.is_empty()) {
                println!("   the legacy service saw these identity headers:");
                for (k, v) in map {
                    println!("     {k}: {}", v.as_str().unwrap_or_default());
                }
            }
        } else {
            if let Some(d) = body["error_description"].as_str() {
                let code = body["error"].as_str().filter(|e| !e.is_empty());
                match code {
                    Some(c) => println!("   why: {c}: {d}"),
                    None => println!("   why: {d}"),
                }
            }
            if let Some(w) = www {
                println!("   {}", style.dim(&format!("WWW-Authenticate: {w}")));
            }
        }
        if status == step.expect {
            as_expected += 1;
        } else {
            println!("   UNEXPECTED: the demo expected {}", step.expect);
        }
        println!();
    }
    println!(
        "{}",
        style.bold(&format!(
            "{as_expected} of {} decisions as expected.",
            steps.len()
        ))
    );
    if keep_running {
        print_try_it(&stack, &style);
        wait_for_stop().await;
    }
    Ok(as_expected == steps.len())
}

fn steps() -> Vec<Step> {
    vec![
        Step {
            title: "The certificate app reads an order",
            why: "The app sends plain HTTP; outbound acquires a token (private_key_jwt), inbound validates it and the role Orders.Read.",
            expect: 200,
        },
        Step {
            title: "The same app calls the admin API",
            why: "Route `admin` requires the role Orders.Admin, which this app was not granted.",
            expect: 403,
        },
        Step {
            title: "A caller with no token, straight to the inbound tollgate",
            why: "Every protected route needs a bearer token.",
            expect: 401,
        },
        Step {
            title: "A forged token: the issuer's kid, signed with another key",
            why: "The signature is checked with the issuer's published keys only.",
            expect: 401,
        },
        Step {
            title: "The secret app (azpacr \"1\") writes an order",
            why: "Route `orders-write` accepts only apps that authenticated with a certificate (azpacr \"2\").",
            expect: 403,
        },
        Step {
            title: "The certificate app (azpacr \"2\") writes an order",
            why: "Same route, same role, but this app proved itself with its certificate.",
            expect: 200,
        },
        Step {
            title: "A signed-in user's call, passed on with on-behalf-of",
            why: "The app forwards its user's token; outbound exchanges it (on-behalf-of), inbound requires a user token with the delegated scope Orders.Read.",
            expect: 200,
        },
    ]
}

/// The request of step `i`, and how to show it.
fn request(http: &reqwest::Client, s: &Stack, i: usize) -> (String, reqwest::RequestBuilder) {
    let out = |path: &str| format!("http://{}{path}", s.outbound);
    let inb = |path: &str| format!("http://{}{path}", s.inbound);
    match i {
        0 => (
            format!("GET {} (Host: {CERT_HOST})", out("/orders/42")),
            http.get(out("/orders/42")).header("host", CERT_HOST),
        ),
        1 => (
            format!("GET {} (Host: {CERT_HOST})", out("/admin/users")),
            http.get(out("/admin/users")).header("host", CERT_HOST),
        ),
        2 => (format!("GET {}", inb("/orders/42")), http.get(inb("/orders/42"))),
        3 => {
            let forged = forged_token(&s.issuer);
            (
                format!("GET {} (Authorization: Bearer <forged>)", inb("/orders/42")),
                http.get(inb("/orders/42")).bearer_auth(forged),
            )
        }
        6 => {
            let user = user_token(&s.issuer);
            (
                format!(
                    "GET {} (Host: {USER_HOST}, Authorization: Bearer <the user's token for the app>)",
                    out("/me/orders")
                ),
                http.get(out("/me/orders"))
                    .header("host", USER_HOST)
                    .bearer_auth(user),
            )
        }
        4 => (
            format!("POST {} (Host: {SECRET_HOST})", out("/orders")),
            http.post(out("/orders"))
                .header("host", SECRET_HOST)
                .body("{\"item\":7}"),
        ),
        _ => (
            format!("POST {} (Host: {CERT_HOST})", out("/orders")),
            http.post(out("/orders"))
                .header("host", CERT_HOST)
                .body("{\"item\":7}"),
        ),
    }
}

/// A signed-in user's token for the certificate app (its audience is the app itself), as
/// the app received it from its own caller.
fn user_token(issuer: &DevIssuer) -> String {
    let now = crate::clock::unix_now();
    issuer.token(json!({
        "aud": format!("api://{CERT_APP}"),
        "azp": "demo-web-frontend",
        "scp": "access_as_user",
        "idtyp": "user",
        "oid": "00000000-0000-0000-0000-00000000a11c",
        "sub": "demo-user-alice",
        "preferred_username": "alice@example.com",
        "tid": crate::devissuer::DEV_TENANT,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }))
}

/// Claims the certificate app would get, signed by a key the issuer never published,
/// under the issuer's own `kid`.
fn forged_token(issuer: &DevIssuer) -> String {
    let kid = issuer.signing_key().kid.clone();
    let mut claims = app_claims(
        AUDIENCE,
        CERT_APP,
        "2",
        &["Orders.Read", "Orders.Write", "Orders.Admin"],
        crate::devissuer::DEV_TENANT,
    );
    claims["iss"] = json!(issuer.issuer());
    match SigningKey::generate_rsa(&kid, jsonwebtoken::Algorithm::RS256) {
        Ok(key) => key.sign(&claims),
        Err(_) => "forged.token.value".into(),
    }
}

async fn start() -> Result<Stack, DemoError> {
    let issuer = DevIssuer::start(loopback()).await.map_err(setup_err)?;
    let dir = std::env::temp_dir().join(format!("tollgate-demo-{}", std::process::id()));
    tokio::fs::create_dir_all(&dir).await.map_err(setup_err)?;
    let cert = ClientCertificate::generate("demo-cert-app").map_err(setup_err)?;
    tokio::fs::write(dir.join("client.pem"), &cert.cert_pem)
        .await
        .map_err(setup_err)?;
    tokio::fs::write(dir.join("client.key"), cert.key_pem.expose())
        .await
        .map_err(setup_err)?;
    tokio::fs::write(dir.join("secret"), DEMO_SECRET)
        .await
        .map_err(setup_err)?;
    issuer.add_client(
        CERT_APP,
        ClientAuth::Certificate {
            jwk: cert.jwk.clone(),
            x5t_s256: cert.x5t_s256.clone(),
        },
        &["Orders.Read", "Orders.Write"],
    );
    issuer.add_client(
        SECRET_APP,
        ClientAuth::Secret(DEMO_SECRET.into()),
        &["Orders.Read", "Orders.Write"],
    );

    let mut stops = Vec::new();
    let (legacy_stop, legacy_shutdown) = server::shutdown_channel();
    let legacy = legacy::start(legacy_shutdown).await.map_err(setup_err)?;
    stops.push(legacy_stop);

    let inbound_yaml = format!(
        r#"admin:
  listen: 127.0.0.1:0
issuers:
  demo:
    issuer: {iss}
    discovery_url: {discovery}
    audiences: ["{AUDIENCE}"]
inbound:
  listen: 127.0.0.1:0
  upstream: http://{legacy}
  forward_claims:
    X-Client-Id: azp
    X-Client-Roles: roles
    X-Client-Auth: azpacr
    X-Tenant-Id: tid
    X-User: preferred_username
  routes:
    - name: my-orders
      match: {{ path_prefix: /me/orders }}
      require: {{ token_kind: user, scopes_any: [Orders.Read] }}
    - name: health
      match: {{ path_prefix: /healthz }}
      allow_anonymous: true
    - name: orders-read
      match: {{ path_prefix: /orders, methods: [GET] }}
      require: {{ roles_any: [Orders.Read] }}
    - name: orders-write
      match: {{ path_prefix: /orders, methods: [POST, PUT, DELETE] }}
      require: {{ roles_all: [Orders.Write], azpacr: ["2"] }}
    - name: admin
      match: {{ path_prefix: /admin }}
      require: {{ roles_any: [Orders.Admin] }}
"#,
        iss = issuer.issuer(),
        discovery = issuer.discovery_url(),
    );
    let (inbound_started, stop) = start_tollgate(&inbound_yaml, &dir).await?;
    stops.push(stop);
    let inbound = inbound_started
        .inbound
        .ok_or_else(|| setup_err("no inbound listener"))?;
    let inbound_admin = inbound_started
        .admin
        .ok_or_else(|| setup_err("no admin listener"))?;

    let outbound_yaml = format!(
        r#"outbound:
  listen: 127.0.0.1:0
  credentials:
    cert-app:
      token_url: {token_url}
      client_id: {CERT_APP}
      scopes: ["{AUDIENCE}/.default"]
      auth: {{ private_key_jwt: {{ certificate_file: client.pem, key_file: client.key }} }}
    secret-app:
      token_url: {token_url}
      client_id: {SECRET_APP}
      scopes: ["{AUDIENCE}/.default"]
      auth: {{ client_secret: {{ file: secret }} }}
    cert-app-as-user:
      token_url: {token_url}
      client_id: {CERT_APP}
      scopes: ["{AUDIENCE}/Orders.Read"]
      exchange: on_behalf_of
      auth: {{ private_key_jwt: {{ certificate_file: client.pem, key_file: client.key }} }}
  routes:
    - name: as-cert-app
      match: {{ host: {CERT_HOST} }}
      upstream: http://{inbound}
      credential: cert-app
    - name: as-secret-app
      match: {{ host: {SECRET_HOST} }}
      upstream: http://{inbound}
      credential: secret-app
    - name: as-the-user
      match: {{ host: {USER_HOST} }}
      upstream: http://{inbound}
      credential: cert-app-as-user
"#,
        token_url = issuer.token_url(),
    );
    let (outbound_started, stop) = start_tollgate(&outbound_yaml, &dir).await?;
    stops.push(stop);
    let outbound = outbound_started
        .outbound
        .ok_or_else(|| setup_err("no outbound listener"))?;
    wait_ready(&inbound_started.readiness).await?;
    wait_ready(&outbound_started.readiness).await?;
    tokio::spawn(inbound_started.wait());
    tokio::spawn(outbound_started.wait());
    Ok(Stack {
        issuer,
        legacy,
        inbound,
        inbound_admin,
        outbound,
        stops,
        dir,
    })
}

async fn start_tollgate(yaml: &str, dir: &Path) -> Result<(sidecar::Started, ShutdownTrigger), DemoError> {
    let config = Config::from_yaml(yaml, dir, &ProcessEnv).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        setup_err(text.join("; "))
    })?;
    let (stop, shutdown) = server::shutdown_channel();
    let started = sidecar::start(config, shutdown).await.map_err(setup_err)?;
    Ok((started, stop))
}

async fn wait_ready(readiness: &Readiness) -> Result<(), DemoError> {
    readiness
        .wait(Duration::from_secs(15))
        .await
        .map_err(|missing| setup_err(format!("not ready after 15 s: {missing:?}")))
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn print_try_it(s: &Stack, style: &Style) {
    println!();
    println!(
        "{}",
        style.bold("Everything keeps running. Try it (Ctrl-C stops):")
    );
    println!("  # as the certificate app, through the outbound tollgate (Host header or HTTP_PROXY)");
    println!("  curl -H 'Host: {CERT_HOST}' http://{}/orders/42", s.outbound);
    println!(
        "  curl -x http://{} -X POST http://{SECRET_HOST}/orders",
        s.outbound
    );
    println!("  # straight to the inbound tollgate, without a token");
    println!("  curl -i http://{}/orders/42", s.inbound);
    println!("  # a token for the secret app from the development issuer, then the inbound tollgate");
    println!(
        "  TOKEN=$(curl -s -d grant_type=client_credentials -d client_id={SECRET_APP} -d client_secret={DEMO_SECRET} -d scope={AUDIENCE}/.default {} | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')",
        s.issuer.token_url()
    );
    println!(
        "  curl -i -H \"Authorization: Bearer $TOKEN\" http://{}/orders/42",
        s.inbound
    );
    println!("  # metrics and readiness of the inbound tollgate");
    println!("  curl http://{}/metrics", s.inbound_admin);
    println!("  curl http://{}/readyz", s.inbound_admin);
}

async fn wait_for_stop() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
