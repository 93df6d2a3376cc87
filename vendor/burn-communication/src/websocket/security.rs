//! Who may connect (speechrnn's patch, `vendor/README.md`): the address every WebSocket
//! server of this process listens on, and the run's shared secret that every connection
//! must present.
//!
//! burn-collective creates its servers and clients itself, so the settings are per
//! process: [`set_security`] before the first server starts or client connects. Without it,
//! servers listen on every interface and take any connection, as upstream's do.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};

use subtle::ConstantTimeEq;

/// The header a connection presents its token in, as `Bearer <token>`.
pub(crate) const TOKEN_HEADER: &str = "authorization";

/// A run's shared secret. It never prints (`Debug` shows `Token(…)`), and it compares only
/// through [`Token::matches`].
#[derive(Clone)]
pub struct Token(Arc<str>);

impl Token {
    /// A token of these characters (they go in an HTTP header: visible ASCII, no spaces).
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a token is visible ASCII characters, at least one, no spaces".into());
        }
        Ok(Self(secret.into()))
    }

    /// Whether `presented` is this token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }

    /// The secret itself, to send it to the other side; never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The header value a client sends.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// Where this process's servers listen, and the token its connections need.
#[derive(Clone, Debug)]
pub struct Security {
    /// The address servers bind to (upstream: `0.0.0.0`).
    pub bind: IpAddr,
    /// The secret each connection presents, and each server demands; none: no check.
    pub token: Option<Token>,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            token: None,
        }
    }
}

static SECURITY: RwLock<Option<Security>> = RwLock::new(None);

/// Sets this process's [`Security`] for the servers and clients created from now on.
pub fn set_security(security: Security) {
    *SECURITY.write().unwrap_or_else(|e| e.into_inner()) = Some(security);
}

/// This process's [`Security`].
pub fn security() -> Security {
    SECURITY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Whether an `Authorization` header value presents `token`.
pub(crate) fn presents(header: Option<&[u8]>, token: &Token) -> bool {
    header
        .and_then(|value| value.strip_prefix(b"Bearer "))
        .is_some_and(|presented| token.matches(presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        let token = Token::new("s3cret").unwrap();
        assert!(presents(Some(b"Bearer s3cret"), &token));
        for wrong in [&b"Bearer s3cre"[..], b"Bearer s3cret!", b"s3cret", b"", b"Bearer "] {
            assert!(!presents(Some(wrong), &token), "{wrong:?}");
        }
        assert!(!presents(None, &token));
        assert_eq!(format!("{token:?}"), "Token(…)");
        assert!(Token::new("with space").is_err() && Token::new("").is_err());
    }
}
