//! IDX files (the MNIST format), parsed from bytes, gzip or raw.
//!
//! Every size is checked against the bytes actually present before anything is allocated, so a
//! hostile header cannot make us reserve gigabytes.

use std::io::Read;

use flate2::read::GzDecoder;

use super::DataError;

/// The largest decompressed IDX file we accept. Full MNIST train images are 47 MB; this leaves
/// room for bigger IDX datasets while refusing a gzip bomb.
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// Decompresses `bytes` if they start with the gzip magic, otherwise returns them as they are.
pub fn maybe_gunzip(name: &str, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        let mut out = Vec::new();
        GzDecoder::new(bytes)
            .take(MAX_DECOMPRESSED_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| DataError::Gzip { file: name.into(), reason: e.to_string() })?;
        if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
            return Err(DataError::TooLarge { file: name.into(), limit: MAX_DECOMPRESSED_BYTES });
        }
        Ok(out)
    } else {
        Ok(bytes.to_vec())
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
    let raw = maybe_gunzip(name, bytes)?;
    let bad = |reason: String| DataError::Format { file: name.into(), reason };
    if raw.len() < 4 {
        return Err(bad(format!("{} bytes is too short for an IDX header", raw.len())));
    }
    if raw[0] != 0 || raw[1] != 0 {
        return Err(bad(format!(
            "bad magic {:02x}{:02x}{:02x}{:02x}: an IDX file starts with two zero bytes",
            raw[0], raw[1], raw[2], raw[3]
        )));
    }
    if raw[2] != 0x08 {
        return Err(bad(format!("element type 0x{:02x} is not unsigned byte (0x08)", raw[2])));
    }
    let ndims = raw[3] as usize;
    if ndims == 0 {
        return Err(bad("zero dimensions".into()));
    }
    let header = 4 + 4 * ndims;
    if raw.len() < header {
        return Err(bad(format!("truncated header: {ndims} dimensions need {header} bytes, file has {}", raw.len())));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]) as usize
        })
        .collect();
    // Checked product: declared dimensions may overflow before they exceed the file.
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("declared dimensions {dims:?} overflow")))?;
    let present = raw.len() - header;
    if expected > present {
        return Err(bad(format!(
            "truncated: dimensions {dims:?} declare {expected} bytes of data, file holds {present}"
        )));
    }
    if expected < present {
        return Err(bad(format!(
            "{} trailing bytes after the {expected} bytes that dimensions {dims:?} declare",
            present - expected
        )));
    }
    let mut data = raw;
    data.drain(..header);
    Ok(IdxU8 { dims, data })
}
