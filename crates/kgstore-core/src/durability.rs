//! [`Durability`]: how hard a commit works to survive a power cut, one vocabulary
//! for every persistent backend and for store URLs (`?durability=relaxed`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// How hard a commit works to survive a power cut before it returns.
///
/// Both modes keep a store consistent after a crash of the process or of the
/// machine, and both survive a crash of the process with nothing lost; they
/// differ only in whether the last commits before a power cut may be lost.
/// Each backend documents what it does for each mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// A commit that returned `Ok` survives a power cut: everything it wrote is
    /// synced to the disk before it returns.
    #[default]
    Immediate,
    /// A power cut may undo the last commits, but never corrupts the store; a
    /// crash of the process loses nothing.
    Relaxed,
}

impl Durability {
    /// The name used in URLs and messages: `immediate` or `relaxed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::Relaxed => "relaxed",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Durability {
    type Err = Error;

    /// Parses `immediate` or `relaxed`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "immediate" => Ok(Self::Immediate),
            "relaxed" => Ok(Self::Relaxed),
            _ => Err(Error::invalid_input(
                format!("durability '{}'", crate::validate::shorten(s)),
                "expected immediate or relaxed",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for d in [Durability::Immediate, Durability::Relaxed] {
            assert_eq!(d.as_str().parse::<Durability>().unwrap(), d);
            assert_eq!(d.to_string(), d.as_str());
        }
        let err = "fast".parse::<Durability>().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("fast"), "{err}");
    }
}
