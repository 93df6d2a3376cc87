//! Who may take part in a run: its token, and the greeting a peer opens its liveness
//! connection with.
//!
//! The liveness protocol is lines of text, each read with a bound on its length:
//! - peer → coordinator: `peer ID TOKEN` (`-` for no token), later `done`;
//! - coordinator → peer: `ok` or `refused WHY`, later `lost ID`.
//!
//! burn's WebSocket servers check the same token (`Authorization: Bearer`, in the
//! vendored burn-communication), before any tensor is read.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use rand::Rng;

pub use burn_communication::websocket::security::Token;

/// The environment variable a peer or a coordinator reads its token from when no
/// `--token-file` is given (`experiment launch` hands its peers their token this way).
pub const TOKEN_VARIABLE: &str = "SPEECHRNN_RUN_TOKEN";

/// The longest line the liveness protocol reads; a longer one ends the connection.
pub(crate) const LONGEST_LINE: u64 = 256;

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read the token file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file or the variable holds no usable token.
    #[error("{origin} holds no usable token: {why}")]
    Unusable {
        /// The file or the variable.
        origin: String,
        /// What is wrong with it.
        why: String,
    },
}

/// The run's token: the first line of `file` when given, else the environment variable
/// [`TOKEN_VARIABLE`], else none (no check).
pub fn run_token(file: Option<&Path>) -> Result<Option<Token>, TokenError> {
    let (text, origin) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            (text, path.display().to_string())
        }
        None => match std::env::var(TOKEN_VARIABLE) {
            Ok(text) => (text, TOKEN_VARIABLE.to_string()),
            Err(_) => return Ok(None),
        },
    };
    let secret = text.lines().next().unwrap_or("").trim();
    Token::new(secret)
        .map(Some)
        .map_err(|why| TokenError::Unusable { origin, why })
}

/// A fresh token of 256 random bits (64 hexadecimal digits) from the operating system's
/// generator (through `rand`'s thread generator, a CSPRNG seeded by it).
pub fn new_token() -> Token {
    let bytes: [u8; 32] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Token::new(&hex).expect("hexadecimal digits are visible ASCII")
}

/// The first line a peer sends on its liveness connection.
pub(crate) fn greeting(id: usize, token: Option<&Token>) -> String {
    format!("peer {id} {}", token.map(Token::expose).unwrap_or("-"))
}

/// The peer a greeting names, if it presents `token` (any greeting when the run has none).
pub(crate) fn greeted(line: &str, token: Option<&Token>) -> Result<usize, &'static str> {
    let mut words = line.trim().splitn(3, ' ');
    let (Some("peer"), Some(id), Some(presented)) = (words.next(), words.next(), words.next())
    else {
        return Err("not a peer's greeting");
    };
    let id = id.parse().map_err(|_| "not a peer's greeting")?;
    match token {
        None => Ok(id),
        Some(token) if token.matches(presented.as_bytes()) => Ok(id),
        Some(_) if presented == "-" => Err("no token"),
        Some(_) => Err("a wrong token"),
    }
}

/// The next line of `reader` without its line end; `None` at the end of the stream, and an
/// error for a line longer than [`LONGEST_LINE`] or not UTF-8.
pub(crate) fn read_line(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut bytes = Vec::new();
    reader
        .take(LONGEST_LINE + 1)
        .read_until(b'\n', &mut bytes)?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.last() != Some(&b'\n') && bytes.len() as u64 > LONGEST_LINE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a line longer than {LONGEST_LINE} bytes"),
        ));
    }
    String::from_utf8(bytes)
        .map(|line| Some(line.trim_end().to_string()))
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greeting_is_accepted_only_with_the_run_token() {
        let token = Token::new("abc123").unwrap();
        let other = Token::new("abc124").unwrap();
        assert_eq!(greeted(&greeting(3, Some(&token)), Some(&token)), Ok(3));
        assert_eq!(
            greeted(&greeting(3, Some(&other)), Some(&token)),
            Err("a wrong token")
        );
        assert_eq!(greeted(&greeting(3, None), Some(&token)), Err("no token"));
        assert_eq!(greeted(&greeting(1, None), None), Ok(1));
        for junk in ["", "peer", "peer x -", "hello 1 -", "peer 1"] {
            assert!(greeted(junk, Some(&token)).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn lines_are_read_to_a_bound() {
        let long = "x".repeat(LONGEST_LINE as usize + 10);
        let text = format!("peer 1 -\n{long}\n");
        let mut reader = std::io::BufReader::new(text.as_bytes());
        assert_eq!(read_line(&mut reader).unwrap().as_deref(), Some("peer 1 -"));
        assert!(read_line(&mut reader).is_err());
        let mut empty = std::io::BufReader::new(&b""[..]);
        assert_eq!(read_line(&mut empty).unwrap(), None);
        let mut binary = std::io::BufReader::new(&[0xff, 0xfe, b'\n'][..]);
        assert!(read_line(&mut binary).is_err());
    }

    #[test]
    fn tokens_are_fresh_and_read_from_the_first_line_of_a_file() {
        let (a, b) = (new_token(), new_token());
        let (a, b) = (a.expose().to_string(), b.expose());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{a}\n")).unwrap();
        let token = run_token(Some(&path)).unwrap().unwrap();
        assert!(token.matches(a.as_bytes()));
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            run_token(Some(&path)),
            Err(TokenError::Unusable { .. })
        ));
        assert!(matches!(
            run_token(Some(&dir.path().join("absent"))),
            Err(TokenError::Read { .. })
        ));
    }
}
