//! The short hex/ASCII preview that every buffer's `Debug` prints.

use std::fmt;

/// How many bytes a `Debug` preview shows before it elides the rest.
pub(crate) const PREVIEW_BYTES: usize = 32;

/// Writes `b"..."` with printable ASCII as is and every other byte as
/// `\xNN`, followed by `...` when `total` is longer than what `bytes` yields.
pub(crate) fn write_preview(
    f: &mut fmt::Formatter<'_>,
    bytes: impl Iterator<Item = u8>,
    total: usize,
) -> fmt::Result {
    f.write_str("b\"")?;
    for byte in bytes.take(PREVIEW_BYTES) {
        match byte {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            b'\t' => f.write_str("\\t")?,
            0x20..=0x7e => write!(f, "{}", byte as char)?,
            _ => write!(f, "\\x{byte:02x}")?,
        }
    }
    f.write_str("\"")?;
    if total > PREVIEW_BYTES {
        f.write_str("...")?;
    }
    Ok(())
}
