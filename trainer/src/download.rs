//! CIFAR-10 without hunting for it: without `--data`, the official binary archive is fetched
//! once into a cache folder, checked against its published MD5 and written atomically, so that
//! a cut or damaged download is never taken for the data.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use md5::{Digest, Md5};

/// The official archive (the "binary version" of the CIFAR-10 page) and its published MD5.
pub const CIFAR_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
pub const CIFAR_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
const CIFAR_FILE: &str = "cifar-10-binary.tar.gz";
/// The archive is 170 MB; a server that sends more is refused before the disk fills.
const MAX_BYTES: u64 = 256 << 20;

/// `$XDG_CACHE_HOME/hidden-neurons/data`, else `~/.cache/hidden-neurons/data`.
pub fn cache_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set: pass --data DIR")?).join(".cache"),
    };
    Ok(base.join("hidden-neurons").join("data"))
}

/// The cached CIFAR-10 archive, downloaded first where it is not there yet. A mirror may be
/// given with `HN_CIFAR_URL` (and its archive's MD5 with `HN_CIFAR_MD5`).
pub fn cifar() -> Result<PathBuf> {
    let url = std::env::var("HN_CIFAR_URL").unwrap_or_else(|_| CIFAR_URL.to_string());
    let md5 = std::env::var("HN_CIFAR_MD5").unwrap_or_else(|_| CIFAR_MD5.to_string()).to_ascii_lowercase();
    let path = cache_dir()?.join(CIFAR_FILE);
    if path.is_file() {
        if file_md5(&path)? == md5 {
            return Ok(path);
        }
        println!("{}: checksum differs from {md5}; downloading it again", path.display());
    }
    println!("no --data given: downloading CIFAR-10 from {url} into {}", path.display());
    fetch(&url, &md5, &path).map_err(|e| {
        e.context(format!(
            "could not download CIFAR-10 from {url}: without a network, pass --data DIR (a folder holding {CIFAR_FILE} or cifar-10-batches-bin/, or the archive itself)"
        ))
    })?;
    Ok(path)
}

fn file_md5(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    copy_hashed(file, std::io::sink()).map_err(|(_, e)| e).with_context(|| format!("reading {}", path.display()))
}

/// Which side of a copy failed.
#[derive(Debug)]
enum Side {
    Read,
    Write,
}

/// Copies `from` into `to` in pieces of 1 MiB, returning the MD5 of what went through.
fn copy_hashed(mut from: impl Read, mut to: impl Write) -> Result<String, (Side, std::io::Error)> {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = from.read(&mut buf).map_err(|e| (Side::Read, e))?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n]).map_err(|e| (Side::Write, e))?;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Streams `url` into a temporary file beside `path`, checks its MD5 and renames it into place.
fn fetch(url: &str, md5: &str, path: &Path) -> Result<()> {
    let dir = path.parent().expect("a cache file has a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_connect(Some(Duration::from_secs(20))).timeout_recv_body(Some(Duration::from_secs(60))).build().into();
    let response = agent.get(url).call()?;
    let mut body = response.into_body().into_with_config().limit(MAX_BYTES).reader();
    let tmp = path.with_file_name(format!("{CIFAR_FILE}.part{}", std::process::id()));
    let written = (|| -> Result<String> {
        let mut out = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        let sum = copy_hashed(&mut body, &mut out).map_err(|(side, e)| match side {
            Side::Read => anyhow::Error::new(e).context("the download was cut short"),
            Side::Write => anyhow::Error::new(e).context(format!("writing {}", tmp.display())),
        })?;
        out.sync_all().with_context(|| format!("writing {}", tmp.display()))?;
        Ok(sum)
    })();
    let got = match written {
        Ok(sum) => sum,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if got != md5 {
        let _ = std::fs::remove_file(&tmp);
        bail!("the downloaded archive's MD5 is {got}, not {md5}: damaged or not CIFAR-10's binary archive (nothing was kept)");
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
