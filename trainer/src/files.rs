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

/// An output folder held by one run: the lock is the OS's (`flock`), so a run killed with
/// kill -9 releases it with its process and never leaves it stuck.
pub struct FolderLock {
    _file: std::fs::File,
}

/// The lock file in a model's output folder.
pub const LOCK_FILE: &str = ".lock";

/// Takes `dir`'s lock, or says which process holds it.
pub fn lock_folder(dir: &Path) -> Result<FolderLock> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() { "another run".to_string() } else { format!("another run (process {holder})") };
            anyhow::bail!(
                "{}: {who} is writing to {} now; wait for it to finish, or give this run another --out",
                path.display(),
                dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
    }
    // The holder's pid, for the message a second run shows; the lock itself is the flock.
    file.set_len(0).and_then(|_| file.rewind()).and_then(|_| write!(file, "{}", std::process::id())).with_context(|| format!("writing {}", path.display()))?;
    Ok(FolderLock { _file: file })
}
