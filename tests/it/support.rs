//! Test harness: the built binary, temporary config files, free loopback ports, an echo
//! upstream, and tollgate started in-process.

pub mod oidc_provider;
pub mod pki;
pub mod tollgate;
pub mod upgrade;
pub mod upstream;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn tollgate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.env_remove("TOLLGATE_CONFIG").env_remove("RUST_LOG");
    cmd
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A config file in its own temporary folder (kept alive by the returned guard).
pub struct ConfigFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn config_file(yaml: &str) -> ConfigFile {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tollgate.yaml");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(yaml.as_bytes()))
        .expect("write config");
    ConfigFile { _dir: dir, path }
}

pub fn check(path: &Path) -> Output {
    tollgate()
        .arg("check")
        .arg("-c")
        .arg(path)
        .output()
        .expect("run tollgate check")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// A running `tollgate run`, killed when dropped.
pub struct Running {
    pub child: Child,
}

impl Running {
    pub fn start(config: &Path) -> Running {
        let child = tollgate()
            .args(["--log-format", "json", "run", "-c"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tollgate run");
        Running { child }
    }

    /// `tollgate run` at `trace` level in JSON, stdout and stderr captured (see [`Running::stop_and_read`]).
    pub fn start_traced(config: &Path) -> Running {
        let child = tollgate()
            .args(["--log-format", "json", "--log-level", "trace", "run", "-c"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tollgate run");
        Running { child }
    }

    /// SIGTERM, expect exit 0, and return everything the process wrote.
    pub async fn stop_and_read(&mut self) -> String {
        use std::io::Read;
        self.signal("TERM");
        assert_eq!(self.wait_exit(Duration::from_secs(10)).await, Some(0));
        let mut out = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut out).expect("read stderr");
        }
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_string(&mut out).expect("read stdout");
        }
        out
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(
            status.map(|s| s.success()).unwrap_or(false),
            "kill -{name} failed"
        );
    }

    /// Wait (bounded) for the process to exit; its exit code.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait (bounded) until the admin listener at `admin` reports ready.
pub async fn wait_ready(admin: SocketAddr) {
    let url = format!("http://{admin}/readyz");
    let start = Instant::now();
    loop {
        let (status, body) = get_when_up(&url).await;
        if status == 200 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `tollgate check --online -c path`, off the async runtime.
pub async fn check_online(path: &Path) -> Output {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        tollgate()
            .args(["check", "--online", "-c"])
            .arg(&path)
            .output()
            .expect("run check --online")
    })
    .await
    .expect("join")
}

/// GET `url` until it answers (bounded), then return status and body.
pub async fn get_when_up(url: &str) -> (u16, String) {
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        match client.get(url).send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                return (status, res.text().await.unwrap_or_default());
            }
            Err(e) if start.elapsed() > Duration::from_secs(10) => panic!("{url} never answered: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}
