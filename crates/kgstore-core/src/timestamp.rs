//! UTC timestamps with microsecond precision, written as RFC 3339 in JSON.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::error::{Error, Result};

const FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Microseconds of 0001-01-01T00:00:00Z since the Unix epoch.
const MIN_MICROS: i64 = -62_135_596_800_000_000;
/// Microseconds of 9999-12-31T23:59:59.999999Z since the Unix epoch.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// A point in time: UTC, microsecond precision, years 1 to 9999.
///
/// In JSON it is an RFC 3339 string with exactly six fractional digits and a
/// `Z`, e.g. `"2026-11-22T09:30:00.123456Z"`, so that its text sorts like its
/// value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch, 1970-01-01T00:00:00Z. New, never stored entities carry it.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// The current time, truncated to the microsecond.
    pub fn now() -> Self {
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_micros()).unwrap_or(MAX_MICROS),
            Err(before) => i64::try_from(before.duration().as_micros()).map_or(MIN_MICROS, |m| -m),
        };
        Timestamp(micros.clamp(MIN_MICROS, MAX_MICROS))
    }

    /// A timestamp from microseconds since the Unix epoch; refused outside years 1 to 9999.
    pub fn from_micros(micros: i64) -> Result<Self> {
        if (MIN_MICROS..=MAX_MICROS).contains(&micros) {
            Ok(Timestamp(micros))
        } else {
            Err(Error::invalid_input(
                "timestamp",
                format!("{micros} µs since 1970 is outside the years 1 to 9999"),
            ))
        }
    }

    /// Microseconds since the Unix epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 timestamp with any offset; sub-microsecond digits are dropped.
    pub fn parse(text: &str) -> Result<Self> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
            Error::invalid_input(format!("timestamp '{text}'"), format!("not RFC 3339: {e}"))
        })?;
        let micros = parsed.unix_timestamp_nanos().div_euclid(1000);
        let micros = i64::try_from(micros)
            .map_err(|_| Error::invalid_input(format!("timestamp '{text}'"), "out of range"))?;
        Self::from_micros(micros)
    }

    fn to_datetime(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000).ok()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The range is checked on construction, so formatting cannot fail in practice.
        match self.to_datetime().and_then(|dt| dt.format(FORMAT).ok()) {
            Some(text) => f.write_str(&text),
            None => write!(f, "@{}us", self.0),
        }
    }
}

impl FromStr for Timestamp {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_six_digits_and_z() {
        let t = Timestamp::from_micros(1_700_000_000_123_456).unwrap();
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456Z");
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn parses_offsets_and_truncates_nanoseconds() {
        let t = Timestamp::parse("2023-11-15T00:13:20.123456789+02:00").unwrap();
        assert_eq!(t.as_micros(), 1_700_000_000_123_456);
        let before_epoch = Timestamp::parse("1969-12-31T23:59:59.9999999Z").unwrap();
        assert_eq!(before_epoch.as_micros(), -1);
    }

    #[test]
    fn round_trips_through_json_at_the_extremes() {
        for micros in [MIN_MICROS, -1, 0, 1, MAX_MICROS] {
            let t = Timestamp::from_micros(micros).unwrap();
            let json = serde_json::to_string(&t).unwrap();
            let back: Timestamp = serde_json::from_str(&json).unwrap();
            assert_eq!(back, t, "{json}");
        }
    }

    #[test]
    fn refuses_garbage_and_out_of_range() {
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("2023-13-01T00:00:00Z").is_err());
        assert!(Timestamp::from_micros(MAX_MICROS + 1).is_err());
        assert!(serde_json::from_str::<Timestamp>("\"0000-01-01T00:00:00Z\"").is_err());
    }

    #[test]
    fn now_is_after_2020() {
        assert!(Timestamp::now() > Timestamp::parse("2020-01-01T00:00:00Z").unwrap());
    }
}
