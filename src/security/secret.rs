//! [`Secret`]: key bytes shared cheaply, compared in constant time, printed only as a length.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;

/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// Key bytes. `Debug` prints only the length; equality does not stop at the first difference.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    pub fn new(bytes: &[u8]) -> Self {
        Secret(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_length_only() {
        let s = Secret::new(&[0x42; 32]);
        assert_eq!(format!("{s:?}"), "Secret(32 bytes)");
        assert_eq!(s, Secret::new(&[0x42; 32]));
        assert_ne!(s, Secret::new(&[0x42; 31]));
    }
}
