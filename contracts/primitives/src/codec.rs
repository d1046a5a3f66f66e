//! Bounded decoding for anything that arrives from a peer, a file or the chain.

use parity_scale_codec::{Decode, DecodeLimit};

/// Nesting depth allowed while decoding; our types nest at most four levels.
const MAX_DEPTH: u32 = 16;

/// Why bytes could not be decoded into a Ferry type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input is longer than the limit for its type.
    TooLarge { len: usize, max: usize },
    /// The input is not a valid canonical encoding (truncated, trailing bytes, bad enum tag, ...).
    Malformed(&'static str),
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::TooLarge { len, max } => {
                write!(f, "{len} bytes exceed the limit of {max}")
            }
            DecodeError::Malformed(why) => write!(f, "malformed encoding: {why}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Decodes `bytes` as exactly one `T`: no more than `max` bytes, no trailing bytes, bounded nesting.
pub fn decode_bounded<T: Decode>(bytes: &[u8], max: usize) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge { len: bytes.len(), max });
    }
    let mut input = bytes;
    let value = T::decode_with_depth_limit(MAX_DEPTH, &mut input)
        .map_err(|_| DecodeError::Malformed("not a valid encoding (truncated, or an unknown variant)"))?;
    if !input.is_empty() {
        return Err(DecodeError::Malformed("trailing bytes after the value"));
    }
    Ok(value)
}
