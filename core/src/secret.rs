//! A wrapper for credentials and other bytes that must never reach a log.

use std::fmt;

/// Holds a value that must not be printed: passwords, SASL responses, raw input that may carry them.
///
/// `Debug` prints a fixed placeholder, and there is deliberately no `Display`, so a
/// `tracing` field or a `{:?}` in an error can never leak the content.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// Borrows the protected value; the caller takes over the duty not to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the protected value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "Secret(..)");
        assert_eq!(s.expose(), "hunter2");
    }
}
