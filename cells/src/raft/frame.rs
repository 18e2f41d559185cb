//! On-disk framing shared by the log and the snapshot files: `[len u32 LE][crc32c u32
//! LE][body]`, and atomic whole-file writes (temp file, fsync, rename, fsync directory).
//!
//! Pure file helpers; must never depend on openraft or the controller.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Frame header size.
pub const HEADER: usize = 8;
/// Largest body accepted when reading (a corrupt length must not allocate gigabytes).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// `body` framed with its length and CRC-32C.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Decodes the frame at the start of `buf`: `Some((body, frame length))`, or `None` when
/// the bytes there are not a whole, intact frame (a torn or corrupt tail).
pub fn decode(buf: &[u8]) -> Option<(&[u8], usize)> {
    if buf.len() < HEADER {
        return None;
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().ok()?);
    if len > MAX_BODY || buf.len() < HEADER + len {
        return None;
    }
    let body = &buf[HEADER..HEADER + len];
    (crc32c::crc32c(body) == crc).then_some((body, HEADER + len))
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// fsyncs a directory so that creations, renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new().read(true).open(dir)?.sync_all()
}

/// Reads a file written by [`write_atomic`] holding one frame; `None` if it does not exist.
pub fn read_framed(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match decode(&bytes) {
        Some((body, n)) if n == bytes.len() => Ok(Some(body.to_vec())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is corrupt (bad length or CRC)", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_frames() {
        let f = encode(b"hello");
        assert_eq!(decode(&f), Some((&b"hello"[..], f.len())));
        assert_eq!(decode(&f[..f.len() - 1]), None);
        let mut bad = f.clone();
        bad[9] ^= 1;
        assert_eq!(decode(&bad), None);
    }
}
