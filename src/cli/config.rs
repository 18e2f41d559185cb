//! The CLI's saved logins: `$XDG_CONFIG_HOME/tributary/config.json` (else
//! `~/.config/tributary/config.json`), one login per API URL, readable by its owner only
//! (the directory 0700, the file 0600, replaced atomically).

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

/// A saved login.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Login {
    pub email: String,
    pub token: String,
    /// RFC 3339, as the API answered it.
    pub expires_at: String,
}

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Config {
    /// Logins by API base URL.
    #[serde(default)]
    pub logins: BTreeMap<String, Login>,
}

/// The config file's path.
pub fn path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => bail!("cannot find a config directory: set XDG_CONFIG_HOME or HOME"),
        },
    };
    Ok(base.join("tributary").join("config.json"))
}

impl Config {
    /// The saved config, or an empty one when there is none yet.
    pub fn load() -> anyhow::Result<Config> {
        let path = path()?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a valid config; delete it and log in again",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the config: a 0600 temp file in a 0700 directory, fsynced, renamed over
    /// the old one.
    pub fn save(&self) -> anyhow::Result<()> {
        let path = path()?;
        let dir = path.parent().expect("the config path has a directory");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(self)?)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow::anyhow!("cannot write {}: {e}", path.display())
        })
    }
}
