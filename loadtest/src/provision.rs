//! `loadtest create-topics`: the workload's topics for many tenants (e.g. 1,000 logical clusters),
//! each created with that tenant's own credentials, a bounded number at a time, with a progress line.
//!
//! Owns: the tenants file format (one `NAME USER PASS` or `NAME` per line, `#` comments) and the
//! bounded worker pool. Each attempt is bounded by the AdminClient's timeouts
//! ([`crate::clients::ensure_topics`]); a failed tenant is retried a bounded number of times (a
//! key just given to a cell may not have reached every broker yet).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::workload::{Tenant, Workload};

/// Attempts per tenant.
const ATTEMPTS: u32 = 10;
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Most workers.
pub const MAX_CONCURRENCY: usize = 64;

/// Parses a tenants file: `NAME USER PASS` (SASL/PLAIN) or `NAME` (PLAINTEXT) per line.
pub fn parse_tenants(text: &str) -> Result<Vec<Tenant>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let t = match f.as_slice() {
            [name] => Tenant {
                name: name.to_string(),
                ..Tenant::default()
            },
            [name, user, pass] => Tenant {
                name: name.to_string(),
                username: Some(user.to_string()),
                password: Some(pass.to_string()),
                ..Tenant::default()
            },
            _ => bail!("line {}: expected NAME or NAME USER PASS", i + 1),
        };
        out.push(t);
    }
    Ok(out)
}

/// What [`create_topics`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Provisioned {
    pub tenants: usize,
    /// Tenants whose topics were all created now (the others had some already).
    pub created: usize,
    pub secs: f64,
}

/// Creates `base`'s topics for every tenant, `concurrency` tenants at a time; a progress line a
/// second on stderr when `progress`. Fails if any tenant still fails after its retries.
pub fn create_topics(
    base: &Workload,
    tenants: Vec<Tenant>,
    concurrency: usize,
    progress: bool,
) -> Result<Provisioned> {
    let n = tenants.len();
    let mut check = base.clone();
    check.tenants = tenants.iter().take(1).cloned().collect();
    check.validate()?;
    let tenants = Arc::new(tenants);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.clamp(1, MAX_CONCURRENCY).min(n.max(1)))
        .map(|i| {
            let (tenants, next, done, created, failures) = (
                tenants.clone(),
                next.clone(),
                done.clone(),
                created.clone(),
                failures.clone(),
            );
            let base = base.clone();
            std::thread::Builder::new()
                .name(format!("lt-topics-{i}"))
                .spawn(move || -> Result<()> {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("starting a topic-creation runtime")?;
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(t) = tenants.get(k) else {
                            return Ok(());
                        };
                        let mut w = base.clone();
                        w.tenants = vec![t.clone()];
                        let mut last = None;
                        for attempt in 0..ATTEMPTS {
                            match rt.block_on(crate::clients::ensure_topics(&w)) {
                                Ok(fresh) => {
                                    if fresh.first() == Some(&true) {
                                        created.fetch_add(1, Ordering::Relaxed);
                                    }
                                    last = None;
                                    break;
                                }
                                Err(e) => {
                                    last = Some(format!("{}: {e:#}", t.name));
                                    if attempt + 1 < ATTEMPTS {
                                        std::thread::sleep(RETRY_PAUSE);
                                    }
                                }
                            }
                        }
                        if let Some(e) = last {
                            failures.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .context("spawning a topic-creation worker")
        })
        .collect::<Result<_>>()?;
    let line = |done: usize| {
        let secs = started.elapsed().as_secs_f64();
        let failed = failures.lock().unwrap_or_else(|e| e.into_inner()).len();
        format!(
            "topics: {done}/{n} tenants ({:.1} tenants/s, {failed} failed, {:.0} s)",
            done as f64 / secs.max(1e-9),
            secs
        )
    };
    let mut next_line = started + Duration::from_secs(1);
    while !workers.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if progress && Instant::now() >= next_line {
            next_line += Duration::from_secs(1);
            eprintln!("{}", line(done.load(Ordering::Relaxed)));
        }
    }
    for h in workers {
        match h.join() {
            Ok(r) => r?,
            Err(_) => bail!("a topic-creation worker panicked"),
        }
    }
    if progress {
        eprintln!("{}", line(done.load(Ordering::Relaxed)));
    }
    let failures = failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(first) = failures.first() {
        bail!(
            "{} of {n} tenants' topics could not be created; the first: {first}",
            failures.len()
        );
    }
    Ok(Provisioned {
        tenants: n,
        created: created.load(Ordering::Relaxed),
        secs: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_file() {
        let t = parse_tenants("# many tenants\nt0001 k1 s1\n\n  t0002\n").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].username.as_deref(), Some("k1"));
        assert_eq!(t[0].password.as_deref(), Some("s1"));
        assert_eq!(t[1].name, "t0002");
        assert_eq!(t[1].credentials().unwrap(), None);
        assert!(parse_tenants("a b").is_err());
        assert!(parse_tenants("a b c d").is_err());
    }
}
