//! UTC timestamps with microsecond precision, written as RFC 3339 in JSON.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};

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
            Ok(since) => whole_micros(since),
            Err(before) => whole_micros(before.duration()).saturating_neg(),
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
        if let Some(micros) = parse_canonical(text.as_bytes()) {
            return Self::from_micros(micros);
        }
        let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
            Error::invalid_input(format!("timestamp '{text}'"), format!("not RFC 3339: {e}"))
        })?;
        let micros = parsed.unix_timestamp_nanos().div_euclid(1000);
        let micros = i64::try_from(micros)
            .map_err(|_| Error::invalid_input(format!("timestamp '{text}'"), "out of range"))?;
        Self::from_micros(micros)
    }

    /// Appends the timestamp as JSON, `"YYYY-MM-DDTHH:MM:SS.ffffffZ"` with its
    /// quotes: the bytes `serde_json` writes for it, without a serializer (writers
    /// of JSON lines straight from stored rows, such as a backup, write two per
    /// entity).
    pub fn write_json(self, out: &mut Vec<u8>) {
        out.push(b'"');
        out.extend_from_slice(&self.canonical());
        out.push(b'"');
    }

    /// The canonical text, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, in a buffer on the stack
    /// (every stored entity has two, so backups write millions of them).
    fn canonical(self) -> [u8; CANONICAL_LEN] {
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let seconds = self.0.div_euclid(1_000_000);
        write_date(&mut out, seconds.div_euclid(86_400));
        write_time(
            &mut out,
            seconds.rem_euclid(86_400),
            self.0.rem_euclid(1_000_000),
        );
        out
    }
}

/// Two digits of `value` (0..=99, never negative here: years 1 to 9999) at `at`.
#[inline]
fn write_pair(out: &mut [u8; CANONICAL_LEN], at: usize, value: i64) {
    let i = (value as usize % 100) * 2;
    out[at] = DIGIT_PAIRS[i];
    out[at + 1] = DIGIT_PAIRS[i + 1];
}

/// The date of `days` since 1970-01-01, `YYYY-MM-DD`, at the start of the canonical text.
fn write_date(out: &mut [u8; CANONICAL_LEN], days: i64) {
    let (year, month, day) = civil_from_days(days);
    write_pair(out, 0, year / 100);
    write_pair(out, 2, year % 100);
    write_pair(out, 5, month);
    write_pair(out, 8, day);
}

/// The time of day, `HH:MM:SS.ffffff`, from the second of the day and the
/// microseconds of the second, at its place in the canonical text.
#[inline]
fn write_time(out: &mut [u8; CANONICAL_LEN], of_day: i64, fraction: i64) {
    write_pair(out, 11, of_day / 3600);
    write_pair(out, 14, of_day / 60 % 60);
    write_pair(out, 17, of_day % 60);
    write_pair(out, 20, fraction / 10_000);
    write_pair(out, 22, fraction / 100 % 100);
    write_pair(out, 24, fraction % 100);
}

/// Writes timestamps as JSON, the bytes of [`Timestamp::write_json`], remembering
/// the last one's text: a timestamp equal to the last is copied, one of the same
/// day has only its time of day written, and the date (the calendar arithmetic)
/// is worked out only when the day changes. For writers of many timestamps in a
/// row, such as a backup's lines, whose entities were mostly written on a few
/// days.
#[derive(Clone, Debug)]
pub struct TimestampWriter {
    /// The last timestamp's microseconds since the epoch (`i64::MIN`: none yet).
    micros: i64,
    /// Its day since 1970-01-01 (`i64::MIN`: none yet; never a valid one's).
    days: i64,
    /// Its canonical text.
    text: [u8; CANONICAL_LEN],
}

impl Default for TimestampWriter {
    fn default() -> Self {
        Self {
            micros: i64::MIN,
            days: i64::MIN,
            text: *b"0000-00-00T00:00:00.000000Z",
        }
    }
}

impl TimestampWriter {
    /// A writer that remembers nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `t` as JSON with its quotes, as [`Timestamp::write_json`] does.
    pub fn write_json(&mut self, t: Timestamp, out: &mut Vec<u8>) {
        if t.0 != self.micros {
            let seconds = t.0.div_euclid(1_000_000);
            let days = seconds.div_euclid(86_400);
            if days != self.days {
                write_date(&mut self.text, days);
                self.days = days;
            }
            write_time(
                &mut self.text,
                seconds.rem_euclid(86_400),
                t.0.rem_euclid(1_000_000),
            );
            self.micros = t.0;
        }
        out.push(b'"');
        out.extend_from_slice(&self.text);
        out.push(b'"');
    }
}

/// The length of the canonical text.
const CANONICAL_LEN: usize = 27;

/// `00` to `99`, two ASCII digits each, for writing timestamps a pair at a time.
const DIGIT_PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// The date of a day counted from 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day counted from 1970-01-01 of a date (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Microseconds of a timestamp in the canonical form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`
/// with a valid date and time; `None` for any other text, which the general RFC
/// 3339 parser then reads (or refuses).
fn parse_canonical(text: &[u8]) -> Option<i64> {
    if text.len() != CANONICAL_LEN {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        text[from..to].iter().try_fold(0i64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let punctuation = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ];
    if punctuation.iter().any(|&(at, b)| text[at] != b) {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let fraction = number(20, 26)?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        _ => return None,
    };
    // A leap second (`:60`) and year 0 are left to the general parser.
    if year == 0 || day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000_000 + fraction)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.canonical();
        // ASCII digits and punctuation only.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
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
        let text = self.canonical();
        match std::str::from_utf8(&text) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.collect_str(self),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whole microseconds in `d`, saturating at `i64::MAX`: from the seconds and the
/// microseconds apart, without the 128-bit arithmetic of `Duration::as_micros`
/// (every write transaction reads the clock once). Measured with callgrind
/// (docs/benchmarks.md, session 15): 9 instructions fewer than
/// `i64::try_from(d.as_micros())` alone, 4 fewer in [`Timestamp::now`].
#[inline]
fn whole_micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|secs| secs.checked_mul(1_000_000))
        .and_then(|micros| micros.checked_add(i64::from(d.subsec_micros())))
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::BorrowedFormatItem;
    use time::macros::format_description;

    const REFERENCE_FORMAT: &[BorrowedFormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

    /// The clock's conversion agrees with `Duration::as_micros` (sub-microsecond
    /// digits dropped) and saturates where that does not fit an `i64`.
    #[test]
    fn whole_micros_matches_as_micros_and_saturates() {
        use std::time::Duration;
        for d in [
            Duration::ZERO,
            Duration::from_nanos(999),
            Duration::from_nanos(1_999),
            Duration::new(1_700_000_000, 123_456_789),
            Duration::new(253_402_300_799, 999_999_999),
            Duration::new(i64::MAX as u64 / 1_000_000, 775_807_999),
        ] {
            assert_eq!(
                i128::from(whole_micros(d)),
                i128::try_from(d.as_micros()).unwrap(),
                "{d:?}"
            );
        }
        assert_eq!(
            whole_micros(Duration::new(i64::MAX as u64 / 1_000_000, 775_808_000)),
            i64::MAX
        );
        assert_eq!(
            whole_micros(Duration::new(i64::MAX as u64 / 1_000_000 + 1, 0)),
            i64::MAX
        );
        assert_eq!(whole_micros(Duration::MAX), i64::MAX);
        let now = Timestamp::now().as_micros();
        assert!((MIN_MICROS..=MAX_MICROS).contains(&now) && now > 1_700_000_000_000_000);
    }

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

    /// The text as the `time` crate formats it (the reference of the fast path).
    fn reference_text(t: Timestamp) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0) * 1000)
            .unwrap()
            .format(REFERENCE_FORMAT)
            .unwrap()
    }

    /// The reference's micros of a text (the general RFC 3339 parser alone).
    fn reference_micros(text: &str) -> Option<i64> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        i64::try_from(parsed.unix_timestamp_nanos().div_euclid(1000)).ok()
    }

    #[test]
    fn the_fast_text_and_parse_agree_with_the_time_crate() {
        let mut rng = fastrand::Rng::with_seed(18);
        let mut cases = vec![MIN_MICROS, MAX_MICROS, -1, 0, 1, 951_782_400_000_000];
        // The days around every leap-year rule: 1900, 2000, 2024 and 2100.
        for day in [
            -25_509i64, -25_508, 11_016, 11_017, 11_018, 19_782, 19_783, 47_540, 47_541,
        ] {
            cases.extend([day * 86_400_000_000, day * 86_400_000_000 - 1]);
        }
        cases.extend((0..20_000).map(|_| rng.i64(MIN_MICROS..=MAX_MICROS)));
        for micros in cases {
            let t = Timestamp::from_micros(micros).unwrap();
            let text = t.to_string();
            assert_eq!(text, reference_text(t), "{micros}");
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{text}\""));
            let mut json = Vec::new();
            t.write_json(&mut json);
            assert_eq!(json, format!("\"{text}\"").into_bytes());
            assert_eq!(parse_canonical(text.as_bytes()), Some(micros), "{text}");
            assert_eq!(Timestamp::parse(&text).unwrap(), t);
        }
        // Texts the fast path leaves to the general parser, which decides alone.
        for text in [
            "2023-02-29T00:00:00.000000Z",
            "2024-02-29T00:00:00.000000Z",
            "1900-02-29T00:00:00.000000Z",
            "2000-02-29T12:00:00.000000Z",
            "2023-04-31T00:00:00.000000Z",
            "2023-00-10T00:00:00.000000Z",
            "2023-01-00T00:00:00.000000Z",
            "2023-01-01T24:00:00.000000Z",
            "2023-01-01T23:60:00.000000Z",
            "2016-12-31T23:59:60.000000Z",
            "0000-01-01T00:00:00.000000Z",
            "2023-01-01t00:00:00.000000z",
            "2023-01-01T00:00:00.00000aZ",
            "2023-01-01T00:00:00+00:00",
        ] {
            let fast = parse_canonical(text.as_bytes());
            if let Some(micros) = fast {
                assert_eq!(Some(micros), reference_micros(text), "{text}");
            }
            let ours = Timestamp::parse(text).ok().map(Timestamp::as_micros);
            let theirs = reference_micros(text).filter(|m| (MIN_MICROS..=MAX_MICROS).contains(m));
            assert_eq!(ours, theirs, "{text}");
        }
    }

    /// The remembering writer gives `write_json`'s bytes whatever came before:
    /// the same instant again, the same second, the same day, another day, before
    /// and after the epoch, at the extremes.
    #[test]
    fn the_timestamp_writer_writes_what_write_json_writes() {
        let mut rng = fastrand::Rng::with_seed(15);
        let day = 86_400_000_000i64;
        let mut cases = vec![
            MIN_MICROS,
            MIN_MICROS,
            MAX_MICROS,
            -1,
            0,
            1,
            -1,
            day - 1,
            day,
        ];
        let base = 1_765_000_000_000_000i64;
        for _ in 0..5_000 {
            cases.push(match rng.u8(0..5) {
                0 => *cases.last().unwrap_or(&0),
                1 => base + rng.i64(0..1_000_000),
                2 => base + rng.i64(0..day),
                3 => -base + rng.i64(-day..day),
                _ => rng.i64(MIN_MICROS..=MAX_MICROS),
            });
        }
        let mut writer = TimestampWriter::new();
        for micros in cases {
            let t = Timestamp::from_micros(micros).unwrap();
            let (mut ours, mut theirs) = (b"x".to_vec(), b"x".to_vec());
            writer.write_json(t, &mut ours);
            t.write_json(&mut theirs);
            assert_eq!(ours, theirs, "{micros}");
            assert_eq!(theirs, format!("x\"{}\"", reference_text(t)).into_bytes());
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
