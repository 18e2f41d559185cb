//! Small durable-file helpers shared by the broker's state files.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// Replace `path` with `contents` atomically and durably: write a temporary file, fsync it,
/// rename it over the target, fsync the directory. A crash leaves the old or the new file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}
