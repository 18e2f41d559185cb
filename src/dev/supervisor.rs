//! The pieces of a dev stack as child processes of `tributary dev`: each is this same
//! executable with a subcommand, in its own process group (a terminal's Ctrl-C reaches only
//! the supervisor, which then stops them in order), with its stdout and stderr appended to
//! its log file and `SIGTERM` delivered to it if the supervisor dies.
//!
//! Each piece has one task that owns its `Child`: it records the pid, waits for an exit or a
//! stop request, and restarts an unexpected exit after a bounded backoff once the stack is
//! up (during start-up an exit is reported instead, so `tributary dev` fails with the log
//! to read rather than looping).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// First pause before restarting a piece; doubles per quick failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A piece that ran this long before exiting starts again from [`FIRST_BACKOFF`].
const STABLE_RUN: Duration = Duration::from_secs(60);

/// One process of the stack: what to run and where its files are.
pub struct Piece {
    /// `controller-1`, `broker-2`, `control-plane`: also the log file's name.
    pub name: String,
    /// Arguments after the executable (subcommand first).
    pub args: Vec<OsString>,
    pub port_file: PathBuf,
    pub log: PathBuf,
    /// How long a SIGTERM may take before SIGKILL.
    pub stop_timeout: Duration,
}

/// What the piece tasks tell the supervisor.
pub enum Event {
    /// A piece exited (or could not be spawned) while the stack was starting.
    StartFailed { name: String, why: String },
    /// A piece was (re)started with this pid.
    Started { name: String, pid: u32 },
}

/// State shared by the supervisor and the piece tasks.
pub struct Shared {
    /// Set once the stack is up: from then on an exit is restarted, not reported.
    supervising: AtomicBool,
    pids: Mutex<BTreeMap<String, u32>>,
    events: mpsc::UnboundedSender<Event>,
}

impl Shared {
    pub fn new(events: mpsc::UnboundedSender<Event>) -> Arc<Shared> {
        Arc::new(Shared {
            supervising: AtomicBool::new(false),
            pids: Mutex::new(BTreeMap::new()),
            events,
        })
    }

    pub fn set_supervising(&self) {
        self.supervising.store(true, Ordering::SeqCst);
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }
}

/// A running piece task.
pub struct Handle {
    pub name: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Ask the task to SIGTERM its child (SIGKILL after the piece's timeout) and end.
    pub fn cancel(&self) {
        self.stop.cancel();
    }

    /// Wait for the task to end (after [`Handle::cancel`], bounded by the stop timeout).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Starts `piece` and supervises it until [`Handle::cancel`].
pub fn start(piece: Piece, shared: Arc<Shared>) -> Handle {
    let stop = CancellationToken::new();
    let name = piece.name.clone();
    let task = tokio::spawn(supervise(piece, shared, stop.clone()));
    Handle { name, stop, task }
}

async fn supervise(piece: Piece, shared: Arc<Shared>, stop: CancellationToken) {
    let mut backoff = FIRST_BACKOFF;
    let mut restarts = 0u32;
    loop {
        let _ = std::fs::remove_file(&piece.port_file);
        let mut child = match spawn(&piece) {
            Ok(child) => child,
            Err(e) => {
                let why = format!("{e:#}");
                if !shared.supervising.load(Ordering::SeqCst) {
                    let _ = shared.events.send(Event::StartFailed {
                        name: piece.name.clone(),
                        why,
                    });
                    return;
                }
                warn!(piece = %piece.name, error = %why, "cannot restart; trying again in {backoff:?}");
                if sleep_or_stop(backoff, &stop).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let pid = child.id().unwrap_or(0);
        shared
            .pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(piece.name.clone(), pid);
        let _ = shared.events.send(Event::Started {
            name: piece.name.clone(),
            pid,
        });
        let started = Instant::now();
        let status = tokio::select! {
            status = child.wait() => status,
            _ = stop.cancelled() => {
                terminate(&piece, &mut child).await;
                return;
            }
        };
        let how = match &status {
            Ok(s) => describe(s),
            Err(e) => format!("could not be waited for: {e}"),
        };
        if !shared.supervising.load(Ordering::SeqCst) {
            let _ = shared.events.send(Event::StartFailed {
                name: piece.name.clone(),
                why: how,
            });
            return;
        }
        if started.elapsed() >= STABLE_RUN {
            backoff = FIRST_BACKOFF;
        }
        restarts += 1;
        warn!(
            piece = %piece.name,
            pid,
            log = %piece.log.display(),
            "{} {how}; restarting in {backoff:?} (restart {restarts})",
            piece.name
        );
        if sleep_or_stop(backoff, &stop).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sleeps `d`; true if a stop was requested meanwhile.
async fn sleep_or_stop(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.cancelled() => true,
    }
}

fn spawn(piece: &Piece) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find the tributary executable")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&piece.log)
        .with_context(|| format!("cannot open {}", piece.log.display()))?;
    let out = log.try_clone()?;
    let mut cmd = Command::new(&exe);
    cmd.args(&piece.args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(log))
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl and
    // getppid, both async-signal-safe. It asks the kernel to SIGTERM the child when the
    // thread that spawned it dies; pieces are spawned from runtime worker threads, which
    // live as long as the supervisor.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The supervisor may have died between fork and prctl.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("the supervisor exited"));
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("cannot start {} ({})", piece.name, exe.display()))
}

/// SIGTERM (and SIGCONT, in case someone stopped it), wait up to the piece's timeout,
/// then SIGKILL.
async fn terminate(piece: &Piece, child: &mut Child) {
    let Some(pid) = child.id() else { return };
    // SAFETY: plain kill(2) on our own unreaped child's pid.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
        libc::kill(pid as i32, libc::SIGCONT);
    }
    match tokio::time::timeout(piece.stop_timeout, child.wait()).await {
        Ok(Ok(status)) => info!(piece = %piece.name, pid, "stopped ({})", describe(&status)),
        Ok(Err(e)) => warn!(piece = %piece.name, pid, "wait failed: {e}"),
        Err(_) => {
            warn!(
                piece = %piece.name,
                pid,
                "did not stop within {:?} of SIGTERM; sending SIGKILL",
                piece.stop_timeout
            );
            let _ = child.kill().await;
        }
    }
}

fn describe(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => status.to_string(),
    }
}
