//! Test harness: the broker as a real OS process (`tributary broker --standalone`, or a
//! broker of a cell with `--controllers`), on a port picked at run time, that a test can
//! SIGKILL, SIGSTOP/SIGCONT, restart on the same port and data directory, and stop
//! cleanly. Its log is kept and printed when a test fails.

#![allow(dead_code)]

pub mod cell;
pub mod clients;
pub mod control_plane;
pub mod tls;
pub mod wire;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct BrokerProcess {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub addr: String,
    /// The SASL_PLAINTEXT listener's address, for a cell broker started with one.
    pub sasl_addr: Option<String>,
    /// The SASL_SSL listener's address, for a cell broker started with one.
    pub sasl_ssl_addr: Option<String>,
    /// `--tls-cert` and `--tls-key`, for a broker with a SASL_SSL listener.
    tls: Option<(PathBuf, PathBuf)>,
    /// The broker id (1 for a standalone broker).
    pub node_id: i32,
    log_path: PathBuf,
    /// `--standalone`, or the cell arguments.
    mode_args: Vec<String>,
    extra_args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

/// The arguments that make a broker `node_id` of the cell of `controllers`, in `zone`.
fn cell_mode(node_id: i32, controllers: &str, zone: &str) -> Vec<String> {
    [
        "--node-id",
        &node_id.to_string(),
        "--controllers",
        controllers,
        "--zone",
        zone,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl BrokerProcess {
    /// Start a broker with a fresh data directory.
    pub fn start(extra_args: &[&str]) -> BrokerProcess {
        Self::start_with(1, vec!["--standalone".to_string()], extra_args, None, None)
    }

    /// Start broker `node_id` of the cell whose controller voters are `controllers`.
    pub fn start_in_cell(
        node_id: i32,
        controllers: &str,
        zone: &str,
        extra_args: &[&str],
    ) -> BrokerProcess {
        let mut mode = cell_mode(node_id, controllers, zone);
        mode.extend(["--tenant".to_string(), "lkc-local".to_string()]);
        Self::start_with(node_id, mode, extra_args, None, None)
    }

    /// Start broker `node_id` of a cell with a SASL_PLAINTEXT listener as well (its
    /// address is `sasl_addr`, kept across restarts).
    pub fn start_in_cell_with_sasl(
        node_id: i32,
        controllers: &str,
        zone: &str,
        extra_args: &[&str],
    ) -> BrokerProcess {
        let mode = cell_mode(node_id, controllers, zone);
        Self::start_with(
            node_id,
            mode,
            extra_args,
            Some("127.0.0.1:0".to_string()),
            None,
        )
    }

    /// Start broker `node_id` of a cell with SASL_PLAINTEXT and SASL_SSL listeners (the
    /// latter serving `cert` and `key`; its address is `sasl_ssl_addr`, kept across
    /// restarts).
    pub fn start_in_cell_with_sasl_ssl(
        node_id: i32,
        controllers: &str,
        zone: &str,
        extra_args: &[&str],
        cert: &Path,
        key: &Path,
    ) -> BrokerProcess {
        let mode = cell_mode(node_id, controllers, zone);
        Self::start_with(
            node_id,
            mode,
            extra_args,
            Some("127.0.0.1:0".to_string()),
            Some((cert.to_path_buf(), key.to_path_buf())),
        )
    }

    fn start_with(
        node_id: i32,
        mode_args: Vec<String>,
        extra_args: &[&str],
        sasl_addr: Option<String>,
        tls: Option<(PathBuf, PathBuf)>,
    ) -> BrokerProcess {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let log_path = tmp.path().join("broker.log");
        let mut b = BrokerProcess {
            child: None,
            data_dir,
            addr: "127.0.0.1:0".to_string(),
            sasl_addr,
            sasl_ssl_addr: tls.as_ref().map(|_| "127.0.0.1:0".to_string()),
            tls,
            node_id,
            log_path,
            mode_args,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            _tmp: Some(tmp),
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let port_file = self.data_dir.with_file_name("port");
        let _ = std::fs::remove_file(&port_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("broker")
            .args(&self.mode_args)
            .args(["--listen", &self.addr])
            .args(
                self.sasl_addr
                    .as_deref()
                    .map(|a| ["--sasl-listen", a])
                    .into_iter()
                    .flatten(),
            )
            .args(self.tls_args())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--port-file")
            .arg(&port_file)
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn tributary");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let Some(addr) = lines.next().filter(|a| !a.trim().is_empty()) {
                    self.addr = addr.trim().to_string();
                    for line in lines {
                        if let Some(sasl) = line.strip_prefix("sasl=") {
                            self.sasl_addr = Some(sasl.trim().to_string());
                        } else if let Some(ssl) = line.strip_prefix("sasl_ssl=") {
                            self.sasl_ssl_addr = Some(ssl.trim().to_string());
                        }
                    }
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "broker exited during start-up ({status}):\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "broker did not start:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `--sasl-ssl-listen ADDR --tls-cert PEM --tls-key PEM`, when the broker has TLS.
    fn tls_args(&self) -> Vec<std::ffi::OsString> {
        match (&self.tls, &self.sasl_ssl_addr) {
            (Some((cert, key)), Some(addr)) => vec![
                "--sasl-ssl-listen".into(),
                addr.into(),
                "--tls-cert".into(),
                cert.into(),
                "--tls-key".into(),
                key.into(),
            ],
            _ => Vec::new(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).expect("running")
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): the process freezes or resumes.
    pub fn pause(&self, stop: bool) {
        unsafe { libc_kill(self.pid(), if stop { 19 } else { 18 }) };
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Wipe the data directory (the broker must be stopped or killed).
    pub fn wipe_data(&self) {
        assert!(self.child.is_none(), "stop or kill the broker first");
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if !sigterm_and_wait(&mut child) {
                panic!("broker did not stop on SIGTERM:\n{}", self.log_tail());
            }
        }
    }

    /// Start again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the broker first");
        self.spawn();
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// SIGTERM `child` and wait up to 20 s for it to exit; false (after a SIGKILL) if it did not.
pub fn sigterm_and_wait(child: &mut Child) -> bool {
    unsafe { libc_kill(child.id() as i32, 15) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- broker log tail ---\n{}", self.log_tail());
        }
        self.kill9();
    }
}
