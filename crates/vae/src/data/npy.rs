//! NumPy's `.npy` format: one array, its header a Python dict literal.
//!
//! ```text
//! \x93NUMPY  major minor  header length (u16 for 1.x, u32 for 2.x and 3.x, little-endian)
//! {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }   padded with spaces, '\n'
//! data: the values in C order
//! ```
//!
//! The reader trusts nothing: the header is parsed by a small grammar of its own (the three
//! keys NumPy writes and nothing else), the shape's product is checked for overflow and
//! against [`MAX_DATA_BYTES`] before anything is allocated, the data must hold exactly what
//! the shape says, and every float must be finite. `uint8` stays bytes; every other numeric
//! dtype becomes `f32`. (The format is small and our needs are narrow, bounded memory and an
//! error that names the problem; a crate would add the whole of `ndarray` for them.)

use std::io::{BufReader, Read, Write};
use std::path::Path;

use super::idx::{MAX_DATA_BYTES, read_up_to};
use super::values::Values;
use crate::error::{Error, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The longest header read: NumPy's own are 128 bytes or a few more.
const MAX_HEADER: usize = 1 << 16;

/// An array as read: its shape and its values in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub values: Values,
}

/// The kinds of number a file may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
}

/// An element type: kind, bytes per value and byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dtype {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl Dtype {
    /// Parses a `descr` such as `<f4`, `|u1`, `>i8`.
    fn parse(descr: &str) -> std::result::Result<Dtype, String> {
        let unsupported = || {
            format!(
                "unsupported dtype '{descr}': the values must be numbers (uint8, float32, float64 or another integer type)"
            )
        };
        let mut chars = descr.chars();
        let big_endian = match chars.next() {
            Some('<' | '|' | '=') => false,
            Some('>') => true,
            _ => return Err(unsupported()),
        };
        let kind = match chars.next() {
            Some('b') => Kind::Bool,
            Some('i') => Kind::Int,
            Some('u') => Kind::Uint,
            Some('f') => Kind::Float,
            _ => return Err(unsupported()),
        };
        let size: usize = chars.as_str().parse().map_err(|_| unsupported())?;
        let known = match kind {
            Kind::Bool => size == 1,
            Kind::Int | Kind::Uint => matches!(size, 1 | 2 | 4 | 8),
            Kind::Float => matches!(size, 4 | 8),
        };
        if !known {
            return Err(unsupported());
        }
        Ok(Dtype { kind, size, big_endian })
    }

    /// Value `bytes` (exactly `size` of them) as a float.
    fn value(&self, bytes: &[u8]) -> f64 {
        let mut raw = [0u8; 8];
        raw[..self.size].copy_from_slice(bytes);
        if self.big_endian {
            raw[..self.size].reverse();
        }
        // `raw` now holds the value little-endian; sign-extend signed integers.
        let unsigned = u64::from_le_bytes(raw);
        match (self.kind, self.size) {
            (Kind::Float, 4) => f32::from_le_bytes(raw[..4].try_into().expect("4 bytes")) as f64,
            (Kind::Float, _) => f64::from_le_bytes(raw),
            (Kind::Int, size) => {
                let shift = 64 - 8 * size as u32;
                ((unsigned << shift) as i64 >> shift) as f64
            }
            (Kind::Bool | Kind::Uint, _) => unsigned as f64,
        }
    }
}

/// The header's three entries.
#[derive(Clone, Debug, PartialEq)]
struct Header {
    dtype: Dtype,
    shape: Vec<usize>,
}

/// Reads the array in `path`.
pub fn read(path: &Path) -> Result<Array> {
    let (file, _) = crate::files::open_regular(path)?;
    parse(BufReader::new(file), path)
}

/// Parses an array from a stream; `source` names it in errors.
pub fn parse(mut reader: impl Read, source: &Path) -> Result<Array> {
    let bad = |problem: String| Error::data_file(source, problem);
    let io = |e: std::io::Error| Error::io(source, e);
    let mut preamble = [0u8; 8];
    let n = read_up_to(&mut reader, &mut preamble).map_err(io)?;
    if n < 8 || &preamble[..6] != MAGIC {
        return Err(bad("not an NPY file (no \\x93NUMPY magic at its start)".into()));
    }
    let (major, minor) = (preamble[6], preamble[7]);
    let length = match major {
        1 => {
            let mut b = [0u8; 2];
            read_exact(&mut reader, &mut b, source, "the header length")?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            read_exact(&mut reader, &mut b, source, "the header length")?;
            u32::from_le_bytes(b) as usize
        }
        _ => {
            return Err(bad(format!(
                "NPY format version {major}.{minor} is not one this tool reads (1.0 to 3.0)"
            )));
        }
    };
    if length > MAX_HEADER {
        return Err(bad(format!("header of {length} bytes: implausibly long")));
    }
    let mut text = vec![0u8; length];
    read_exact(&mut reader, &mut text, source, "the header")?;
    let text = String::from_utf8(text).map_err(|_| bad("header is not text".into()))?;
    let header = parse_header(&text).map_err(|p| bad(format!("header {}: {p}", text.trim_end())))?;
    let values = read_values(&mut reader, source, &header)?;
    Ok(Array {
        shape: header.shape,
        values,
    })
}

/// The values `header` announces, exactly as many as its shape says.
fn read_values(reader: &mut impl Read, source: &Path, header: &Header) -> Result<Values> {
    let bad = |problem: String| Error::data_file(source, problem);
    let count = header
        .shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
        .filter(|&n| n.saturating_mul(header.dtype.size.max(4) as u64) <= MAX_DATA_BYTES)
        .ok_or_else(|| {
            bad(format!(
                "shape {} would take more than {} MiB",
                shape_text(&header.shape),
                MAX_DATA_BYTES >> 20
            ))
        })? as usize;
    let bytes = count * header.dtype.size;
    let short = |found: usize| {
        bad(format!(
            "shape {} needs {bytes} bytes of data, the file holds {found}",
            shape_text(&header.shape)
        ))
    };
    let values = if header.dtype
        == (Dtype {
            kind: Kind::Uint,
            size: 1,
            big_endian: false,
        }) {
        let mut data = Vec::with_capacity(bytes.min(64 << 20));
        reader
            .take(bytes as u64)
            .read_to_end(&mut data)
            .map_err(|e| Error::io(source, e))?;
        if data.len() < bytes {
            return Err(short(data.len()));
        }
        Values::Bytes(data)
    } else {
        // Converted a chunk at a time: the raw bytes of a float64 file are never held whole.
        let size = header.dtype.size;
        let mut floats = Vec::with_capacity(count.min(16 << 20));
        let mut chunk = vec![0u8; size * 8192];
        let mut left = bytes;
        while left > 0 {
            let want = left.min(chunk.len());
            let got = read_up_to(reader, &mut chunk[..want]).map_err(|e| Error::io(source, e))?;
            if got < want {
                return Err(short(bytes - left + got));
            }
            for raw in chunk[..want].chunks_exact(size) {
                let v = header.dtype.value(raw);
                if !(v as f32).is_finite() {
                    let at = index_text(&header.shape, floats.len());
                    let what = match v {
                        _ if v.is_nan() => "NaN",
                        _ if v.is_infinite() => "infinite",
                        _ => "beyond the range of 32-bit floats",
                    };
                    return Err(bad(format!(
                        "the value at {at} is {what}: every value must be a finite number"
                    )));
                }
                floats.push(v as f32);
            }
            left -= want;
        }
        Values::Floats(floats)
    };
    let mut extra = [0u8; 1];
    if read_up_to(reader, &mut extra).map_err(|e| Error::io(source, e))? > 0 {
        return Err(bad(format!(
            "has data after the {bytes} bytes its shape {} declares",
            shape_text(&header.shape)
        )));
    }
    Ok(values)
}

/// `(60000, 784)`, as NumPy writes shapes.
pub fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The index `[i, j, ...]` of flat position `flat` in an array of `shape`.
fn index_text(shape: &[usize], mut flat: usize) -> String {
    let mut index = vec![0; shape.len()];
    for (slot, &d) in index.iter_mut().zip(shape).rev() {
        if d > 0 {
            *slot = flat % d;
            flat /= d;
        }
    }
    format!(
        "[{}]",
        index.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
    )
}

/// A token of the header's dict literal.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    Open(char),
    Close(char),
    Comma,
    Colon,
    Text(String),
    Number(u64),
    Bool(bool),
}

fn tokens(text: &str) -> std::result::Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '{' | '(' | '[' => {
                out.push(Token::Open(c));
                chars.next();
            }
            '}' | ')' | ']' => {
                out.push(Token::Close(c));
                chars.next();
            }
            ',' => {
                out.push(Token::Comma);
                chars.next();
            }
            ':' => {
                out.push(Token::Colon);
                chars.next();
            }
            '\'' | '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') => return Err("escapes in strings are not part of an NPY header".into()),
                        Some(ch) => s.push(ch),
                        None => return Err("a string is not closed".into()),
                    }
                }
                out.push(Token::Text(s));
            }
            '0'..='9' => {
                let mut n: u64 = 0;
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(d as u64 - '0' as u64))
                        .ok_or("a dimension is too large")?;
                    chars.next();
                }
                // Python 2 wrote long integers as `60000L`.
                if chars.peek() == Some(&'L') {
                    chars.next();
                }
                out.push(Token::Number(n));
            }
            _ => {
                let word: String = std::iter::from_fn(|| chars.next_if(|ch| ch.is_ascii_alphabetic())).collect();
                match word.as_str() {
                    "True" => out.push(Token::Bool(true)),
                    "False" => out.push(Token::Bool(false)),
                    "" => return Err(format!("unexpected '{c}'")),
                    _ => return Err(format!("unexpected '{word}'")),
                }
            }
        }
    }
    Ok(out)
}

/// Parses `{'descr': ..., 'fortran_order': ..., 'shape': (...)}`, in any order, each once.
fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let tokens = tokens(text)?;
    let mut at = tokens.iter().peekable();
    let mut next = || at.next().cloned();
    if next() != Some(Token::Open('{')) {
        return Err("is not a dict".into());
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        let key = match next() {
            Some(Token::Close('}')) => break,
            Some(Token::Text(key)) => key,
            _ => return Err("expected a key".into()),
        };
        if next() != Some(Token::Colon) {
            return Err(format!("expected ':' after '{key}'"));
        }
        match key.as_str() {
            "descr" => match next() {
                Some(Token::Text(d)) => descr = Some(d),
                Some(Token::Open('[')) => {
                    return Err("a structured dtype (named fields) is not read: store one plain numeric array".into());
                }
                _ => return Err("'descr' is not a string".into()),
            },
            "fortran_order" => match next() {
                Some(Token::Bool(b)) => fortran = Some(b),
                _ => return Err("'fortran_order' is not True or False".into()),
            },
            "shape" => {
                if next() != Some(Token::Open('(')) {
                    return Err("'shape' is not a tuple".into());
                }
                let mut dims = Vec::new();
                loop {
                    match next() {
                        Some(Token::Close(')')) => break,
                        Some(Token::Number(n)) => {
                            dims.push(usize::try_from(n).map_err(|_| "a dimension is too large")?);
                            match next() {
                                Some(Token::Comma) => {}
                                Some(Token::Close(')')) => break,
                                _ => return Err("'shape' is not a tuple of integers".into()),
                            }
                        }
                        _ => return Err("'shape' is not a tuple of integers".into()),
                    }
                }
                shape = Some(dims);
            }
            other => return Err(format!("unknown key '{other}'")),
        }
        match next() {
            Some(Token::Comma) => {}
            Some(Token::Close('}')) => break,
            _ => return Err("expected ',' or '}'".into()),
        }
    }
    if next().is_some() {
        return Err("text after the dict".into());
    }
    let descr = descr.ok_or("no 'descr'")?;
    let fortran = fortran.ok_or("no 'fortran_order'")?;
    let shape = shape.ok_or("no 'shape'")?;
    if fortran {
        return Err("is in Fortran order (column-major): save the array in C order, e.g. np.save(path, np.ascontiguousarray(a))".into());
    }
    Ok(Header {
        dtype: Dtype::parse(&descr)?,
        shape,
    })
}

/// Writes `values` as a little-endian float32 array of `shape` (version 1.0).
pub fn write_f32(out: &mut impl Write, shape: &[usize], values: &[f32]) -> std::io::Result<()> {
    debug_assert_eq!(shape.iter().product::<usize>(), values.len());
    write_header(out, "<f4", shape)?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    out.write_all(&bytes)
}

/// Writes `values` as a uint8 array of `shape` (version 1.0).
pub fn write_u8(out: &mut impl Write, shape: &[usize], values: &[u8]) -> std::io::Result<()> {
    debug_assert_eq!(shape.iter().product::<usize>(), values.len());
    write_header(out, "|u1", shape)?;
    out.write_all(values)
}

/// Magic, version 1.0, length and dict, padded with spaces so that the data starts on a
/// 64-byte boundary, as NumPy pads it.
fn write_header(out: &mut impl Write, descr: &str, shape: &[usize]) -> std::io::Result<()> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}",
        shape_text(shape)
    );
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let length = u16::try_from(dict.len() + padding + 1).map_err(std::io::Error::other)?;
    out.write_all(MAGIC)?;
    out.write_all(&[1, 0])?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(dict.as_bytes())?;
    out.write_all(&vec![b' '; padding])?;
    out.write_all(b"\n")
}

fn read_exact(reader: &mut impl Read, buf: &mut [u8], source: &Path, what: &str) -> Result<()> {
    let n = read_up_to(reader, buf).map_err(|e| Error::io(source, e))?;
    if n < buf.len() {
        return Err(Error::data_file(
            source,
            format!("truncated: the file ends inside {what}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(bytes: &[u8]) -> Result<Array> {
        parse(bytes, Path::new("x.npy"))
    }

    fn file(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        with_dict(
            &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n"),
            data,
        )
    }

    fn with_dict(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((dict.len() as u16).to_le_bytes());
        out.extend(dict.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn written_arrays_read_back() {
        let mut bytes = Vec::new();
        write_f32(&mut bytes, &[2, 3], &[1.0, -2.5, 3.0, 0.0, 1e-7, 7.0]).unwrap();
        assert_eq!((bytes.len() - 24) % 64, 0, "data starts on a 64-byte boundary");
        let array = parsed(&bytes).unwrap();
        assert_eq!(array.shape, vec![2, 3]);
        assert_eq!(array.values, Values::Floats(vec![1.0, -2.5, 3.0, 0.0, 1e-7, 7.0]));
        let mut bytes = Vec::new();
        write_u8(&mut bytes, &[3], &[0, 7, 255]).unwrap();
        assert_eq!(parsed(&bytes).unwrap().values, Values::Bytes(vec![0, 7, 255]));
    }

    #[test]
    fn every_numeric_dtype_and_byte_order() {
        let be = file(">i2", "(2,)", &[0xff, 0xfe, 0x01, 0x00]);
        assert_eq!(parsed(&be).unwrap().values, Values::Floats(vec![-2.0, 256.0]));
        let le = file("<i8", "(1,)", &(-5i64).to_le_bytes());
        assert_eq!(parsed(&le).unwrap().values, Values::Floats(vec![-5.0]));
        let f8 = file("<f8", "(1, 1)", &0.25f64.to_le_bytes());
        assert_eq!(parsed(&f8).unwrap().values, Values::Floats(vec![0.25]));
        let b = file("|b1", "(2,)", &[1, 0]);
        assert_eq!(parsed(&b).unwrap().values, Values::Floats(vec![1.0, 0.0]));
    }

    #[test]
    fn bad_files_are_named_problems() {
        let problem = |bytes: &[u8]| parsed(bytes).unwrap_err().to_string();
        assert!(problem(b"PK\x03\x04").contains("not an NPY file"));
        let fortran = with_dict("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", &[0; 4]);
        assert!(problem(&fortran).contains("Fortran order"));
        let python2 = with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }", &[0; 8]);
        assert_eq!(parsed(&python2).unwrap().shape, vec![1, 2]);
        assert!(problem(&file("<c8", "(1,)", &[0; 8])).contains("unsupported dtype '<c8'"));
        assert!(problem(&file("<U3", "(1,)", &[0; 12])).contains("unsupported dtype"));
        assert!(problem(&file("<f4", "(2, 2)", &[0; 12])).contains("needs 16 bytes of data, the file holds 12"));
        assert!(problem(&file("<f4", "(1,)", &[0; 8])).contains("data after"));
        assert!(problem(&file("<f4", "(1,)", &f32::NAN.to_le_bytes())).contains("at [0] is NaN"));
        let inf = [1.0f32, f32::INFINITY]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>();
        assert!(problem(&file("<f4", "(1, 2)", &inf)).contains("at [0, 1] is infinite"));
        assert!(problem(&file("<f4", "(99999999999, 99999999999)", &[])).contains("more than"));
        assert!(problem(&file("<f4", "[1]", &[])).contains("not a tuple"));
        assert!(problem(&file("<f4", "(1,), 'extra': 1", &[])).contains("unknown key 'extra'"));
        assert!(problem(&file("<f4", "(1,)", &[])[..20]).contains("truncated"));
    }
}
