//! IDX files (the MNIST format), parsed from bytes or streamed from a reader, gzip or raw.
//!
//! Every size is checked before anything is allocated: the header's declared size against the
//! limit, then against the bytes actually present (read in bounded steps, never more than the
//! header declared plus one), so neither a hostile header, a sparse multi-GB file nor a gzip bomb
//! can make us hold gigabytes.

use std::io::{BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

use super::DataError;

/// The largest decompressed IDX file we accept. Full MNIST train images are 47 MB, EMNIST
/// digits' 188 MB; this leaves room for bigger IDX datasets while keeping a run's memory bounded.
pub const MAX_DECOMPRESSED_BYTES: u64 = 512 << 20;

/// The largest IDX file we read, raw or fetched: the largest payload plus the largest header (the
/// magic and up to 255 dimensions of 4 bytes). Refusing larger files before reading them keeps a
/// sparse multi-GB file or an endless download out of memory.
pub const MAX_IDX_FILE_BYTES: u64 = MAX_DECOMPRESSED_BYTES + 4 + 4 * 255;

/// Reads all of `reader` into memory, refusing more than `limit` bytes (read at most one past).
pub fn read_capped(name: &str, reader: impl Read, limit: u64) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DataError::Format { file: name.into(), reason: format!("cannot read: {e}") })?;
    if out.len() as u64 > limit {
        return Err(DataError::TooLarge { file: name.into(), limit });
    }
    Ok(out)
}

/// Reads the file at `path`, refusing one over `limit` bytes from its size before reading it (and
/// reading at most one byte past the limit, should it grow meanwhile).
pub fn read_file_capped(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io { file: path.into(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() > limit {
        return Err(DataError::TooLarge { file: path.display().to_string(), limit });
    }
    read_capped(&path.display().to_string(), file, limit)
}

/// Decompresses `bytes` (every gzip member, as `pigz` or `cat a.gz b.gz` write them) if they
/// start with the gzip magic, otherwise returns them as they are; at most `limit` bytes.
pub fn maybe_gunzip(name: &str, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let mut reader = decoded(name, bytes)?;
    let out = read_capped(name, &mut reader, MAX_DECOMPRESSED_BYTES)?;
    Ok(out)
}

/// A reader over the decompressed content of `source`: gzip (all members) when it starts with
/// the gzip magic, the bytes as they are otherwise.
pub fn decoded<'a>(name: &str, source: impl Read + 'a) -> Result<Box<dyn Read + 'a>, DataError> {
    let mut buffered = BufReader::new(source);
    let head = buffered.fill_buf().map_err(|e| DataError::Format { file: name.into(), reason: format!("cannot read: {e}") })?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(GzipErrors { name: name.into(), inner: MultiGzDecoder::new(buffered) }))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Tags the decoder's I/O errors so that they come out as [`DataError::Gzip`].
struct GzipErrors<R> {
    name: String,
    inner: R,
}

impl<R: Read> Read for GzipErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| std::io::Error::other(GzipFailure(format!("{}: not valid gzip: {e}", self.name))))
    }
}

#[derive(Debug)]
struct GzipFailure(String);

impl std::fmt::Display for GzipFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GzipFailure {}

/// Maps a read error to a [`DataError`] naming `name`, keeping gzip failures recognisable.
fn read_error(name: &str, e: std::io::Error, what: &str) -> DataError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<GzipFailure>()) {
        Some(GzipFailure(msg)) => DataError::Gzip {
            file: name.into(),
            reason: msg.split_once(": not valid gzip: ").map(|(_, r)| r.to_string()).unwrap_or_else(|| msg.clone()),
        },
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => DataError::Format { file: name.into(), reason: format!("truncated {what}") },
        None => DataError::Format { file: name.into(), reason: format!("cannot read {what}: {e}") },
    }
}

/// A parsed IDX file of unsigned bytes: its dimensions and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxU8 {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses an IDX file whose element type is unsigned byte (type code 0x08), gzip or raw.
pub fn parse_idx_u8(name: &str, bytes: &[u8]) -> Result<IdxU8, DataError> {
    read_idx_u8(name, bytes, MAX_DECOMPRESSED_BYTES)
}

/// Streams an IDX file of unsigned bytes from `source` (gzip or raw), refusing a payload over
/// `limit` bytes before reading it.
pub fn read_idx_u8(name: &str, source: impl Read, limit: u64) -> Result<IdxU8, DataError> {
    let mut r = decoded(name, source)?;
    let bad = |reason: String| DataError::Format { file: name.into(), reason };
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut r, &mut magic).map_err(|e| read_error(name, e, "header"))?;
    if got < 4 {
        return Err(bad(format!("{got} bytes is too short for an IDX header")));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(format!(
            "bad magic {:02x}{:02x}{:02x}{:02x}: an IDX file starts with two zero bytes",
            magic[0], magic[1], magic[2], magic[3]
        )));
    }
    if magic[2] != 0x08 {
        return Err(bad(format!("element type 0x{:02x} is not unsigned byte (0x08)", magic[2])));
    }
    let ndims = magic[3] as usize;
    if ndims == 0 {
        return Err(bad("zero dimensions".into()));
    }
    let mut raw_dims = vec![0u8; 4 * ndims];
    let got = read_up_to(&mut r, &mut raw_dims).map_err(|e| read_error(name, e, "header"))?;
    if got < raw_dims.len() {
        return Err(bad(format!("truncated header: {ndims} dimensions need {} bytes, file has {}", 4 + 4 * ndims, 4 + got)));
    }
    let dims: Vec<usize> = raw_dims.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    // Checked product: declared dimensions may overflow before they exceed the file.
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("declared dimensions {dims:?} overflow")))?;
    if expected as u64 > limit {
        return Err(bad(format!("dimensions {dims:?} declare {expected} bytes of data, more than the {limit}-byte limit")));
    }
    let mut data = Vec::new();
    (&mut r).take(expected as u64).read_to_end(&mut data).map_err(|e| read_error(name, e, "data"))?;
    if data.len() < expected {
        return Err(bad(format!("truncated: dimensions {dims:?} declare {expected} bytes of data, file holds {}", data.len())));
    }
    // One byte tells; counting a long (or decompression-bomb) tail would only cost time.
    let mut probe = [0u8; 1];
    if read_up_to(&mut r, &mut probe).map_err(|e| read_error(name, e, "data"))? > 0 {
        return Err(bad(format!("trailing bytes after the {expected} bytes that dimensions {dims:?} declare")));
    }
    Ok(IdxU8 { dims, data })
}

/// Fills `buf` as far as the reader goes; returns how many bytes were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
