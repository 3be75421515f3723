//! `Secret<T>`: a value that never prints. Client secrets, tokens, assertions and private
//! keys are held in it, so a stray `{:?}` in a log line shows `[redacted]`.

use std::fmt;

/// A secret value; `Debug` and `Display` print `[redacted]`. Use [`Secret::expose`] at
/// the single place the value is really needed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret value itself. Never pass the result to a log or an error message.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)]
    struct TokenResponse {
        access_token: Secret<String>,
        expires_in: u64,
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("eyJhbGciOi.super-secret".to_string());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "eyJhbGciOi.super-secret");
    }

    #[test]
    fn a_secret_inside_a_struct_stays_hidden_in_debug_output() {
        let r = TokenResponse {
            access_token: Secret::new("tok-123".into()),
            expires_in: 3600,
        };
        let printed = format!("{r:?} {r:#?}");
        assert!(!printed.contains("tok-123"), "{printed}");
        assert!(printed.contains("[redacted]") && printed.contains("3600"));
    }
}
