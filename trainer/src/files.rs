//! Atomic file writes: a reader (or a run killed mid-write) sees the old file or the new one,
//! never half of one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    // fsync so that the rename never exposes a file whose data is still in flight.
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// The largest JSON file (results, figures, progress) we read back.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// Reads a JSON file this trainer wrote, refusing (before reading) one over [`MAX_JSON_BYTES`].
pub fn read(path: &Path) -> Result<Vec<u8>> {
    Ok(hidden_neurons::data::read_file_capped(path, MAX_JSON_BYTES)?)
}
