//! `.npy` files (NumPy's format, version 1.0): float32 matrices out, float32/64 arrays in.

use std::io::Write;
use std::path::Path;

use crate::{FeatureError, Features};

/// The bytes of a little-endian float32 `.npy` array of the given shape.
pub fn npy_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for value in data {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// Writes bytes to `path` atomically: a temporary file beside it, then a rename,
/// so a crash never leaves a half-written file under the final name. The folder must exist.
/// Every file this workspace writes whole goes through here.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("notes.txt");
/// features::write_atomic(&path, b"hello").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello");
/// assert!(features::write_atomic(&dir.path().join("missing/x.txt"), b"").is_err());
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temporary = tempfile::NamedTempFile::new_in(directory)?;
    temporary.write_all(bytes)?;
    temporary.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Saves features as a float32 `[frames, dim]` `.npy` file, atomically.
pub fn write_npy(path: impl AsRef<Path>, features: &Features) -> Result<(), FeatureError> {
    let path = path.as_ref();
    write_atomic(
        path,
        &npy_bytes(&[features.num_frames, features.dim], &features.data),
    )
    .map_err(|e| FeatureError::io(path, e))
}

/// A float array read from `.npy`: its shape and values (float64 files are narrowed).
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads a little-endian float32 or float64, C-ordered `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray, FeatureError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| FeatureError::io(path, e))?;
    parse_npy(&bytes)
}

/// Parses `.npy` bytes; see [`read_npy`].
pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray, FeatureError> {
    let bad = |why: &str| FeatureError::UnsupportedNpy(why.to_string());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("no magic"));
    }
    let (header_len, offset) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(bad("unknown version")),
    };
    let header = bytes
        .get(offset..offset + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("header"))?;
    if header.contains("'fortran_order': True") {
        return Err(bad("Fortran order"));
    }
    let width = if header.contains("'<f4'") {
        4
    } else if header.contains("'<f8'") {
        8
    } else {
        return Err(bad("dtype is not <f4 or <f8"));
    };
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|rest| rest.split('(').nth(1))
        .and_then(|rest| rest.split(')').next())
        .ok_or_else(|| bad("shape"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| bad("shape")))
        .collect::<Result<Vec<_>, _>>()?;
    let count: usize = shape.iter().product();
    let body = &bytes[offset + header_len..];
    if body.len() != count * width {
        return Err(bad("data length does not match the shape"));
    }
    let data = if width == 4 {
        body.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect()
    };
    Ok(NpyArray { shape, data })
}
