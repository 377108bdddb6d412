//! CIFAR-10 fetched when `--data` is not given, from a loopback HTTP server made here (never the
//! network): a wrong checksum, a truncated download and no server at all leave nothing in the
//! cache and name `--data`; a good download is cached and used again without a request.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};

#[path = "common/mod.rs"]
mod common;
use common::{gz, write_fake_cifar};

/// What the server sends for each request.
#[derive(Clone, Copy, PartialEq)]
enum Serve {
    Whole,
    /// The full Content-Length, then half the bytes and a closed connection.
    Half,
}

struct Server {
    url: String,
    mode: Arc<Mutex<Serve>>,
    requests: Arc<AtomicUsize>,
}

fn serve(body: Vec<u8>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cifar-10-binary.tar.gz", listener.local_addr().unwrap());
    let mode = Arc::new(Mutex::new(Serve::Whole));
    let requests = Arc::new(AtomicUsize::new(0));
    let (m, r) = (mode.clone(), requests.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // The request's head, up to its blank line.
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            r.fetch_add(1, Ordering::SeqCst);
            let sent = match *m.lock().unwrap() {
                Serve::Whole => &body[..],
                Serve::Half => &body[..body.len() / 2],
            };
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(sent);
        }
    });
    Server { url, mode, requests }
}

/// A CIFAR-10 archive in the official layout, 30 images per batch file.
fn archive(dir: &Path) -> Vec<u8> {
    write_fake_cifar(dir, 30);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all("cifar-10-batches-bin", dir.join("cifar-10-batches-bin")).unwrap();
    gz(&builder.into_inner().unwrap())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hn-download-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cache: &Path, url: &str, md5: &str, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args([
            "reproduce", "--model", "cifar", "--preset", "fast", "--backend", "cpu", "--only", "cnn-linear", "--hidden", "2", "--epochs", "1",
            "--tracked", "4", "--retrain-samples", "8", "--quiet", "--out",
        ])
        .arg(out)
        .env("XDG_CACHE_HOME", cache)
        .env("HN_CIFAR_URL", url)
        .env("HN_CIFAR_MD5", md5)
        .output()
        .unwrap()
}

fn refused(o: &Output, expect: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for e in expect {
        assert!(stderr.contains(e), "should name {e:?}: {stderr}");
    }
}

/// Nothing but the finished archive may ever sit in the cache folder.
fn cached(cache: &Path) -> Vec<String> {
    let dir = cache.join("hidden-neurons/data");
    let mut names: Vec<String> = std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    names.sort();
    names
}

#[test]
fn cifar_is_downloaded_checked_and_cached() {
    let work = scratch("work");
    let body = archive(&work.join("src"));
    let md5: String = Md5::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
    let server = serve(body);
    let cache = work.join("cache");
    let out = work.join("out");

    // A checksum that does not match: nothing kept.
    let o = run(&cache, &server.url, &"0".repeat(32), &out);
    refused(&o, &["MD5", "--data"]);
    assert!(cached(&cache).is_empty(), "{:?}", cached(&cache));

    // A download cut short (the connection closes before Content-Length bytes): nothing kept.
    *server.mode.lock().unwrap() = Serve::Half;
    let o = run(&cache, &server.url, &md5, &out);
    refused(&o, &["cut short", "--data"]);
    assert!(cached(&cache).is_empty(), "{:?}", cached(&cache));

    // Whole: downloaded, checked, cached, used.
    *server.mode.lock().unwrap() = Serve::Whole;
    let o = run(&cache, &server.url, &md5, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("downloading CIFAR-10"));
    assert_eq!(cached(&cache), ["cifar-10-binary.tar.gz"]);
    assert!(out.join("cifar-cnn-linear/results.json").is_file());
    let asked = server.requests.load(Ordering::SeqCst);
    assert_eq!(asked, 3);

    // The cached copy is used again without a request.
    let o = run(&cache, &server.url, &md5, &work.join("out2"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("downloading"));
    assert_eq!(server.requests.load(Ordering::SeqCst), asked);

    // No server at all (nothing listens on port 1), and an empty cache: the error says to pass --data.
    let o = run(&work.join("empty-cache"), "http://127.0.0.1:1/cifar-10-binary.tar.gz", &md5, &work.join("out3"));
    refused(&o, &["could not download CIFAR-10", "pass --data"]);
}
