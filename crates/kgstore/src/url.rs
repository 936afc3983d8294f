//! Store URLs: `scheme://path?key=value&…`, and the options they carry.

use std::collections::BTreeMap;
use std::time::Duration;

use kgstore_core::{Error, Result};

pub use kgstore_core::Durability;

/// Options every backend understands, from URL parameters or set in code.
///
/// | parameter | meaning | default |
/// |---|---|---|
/// | `durability=immediate\|relaxed` | see [`Durability`] | `immediate` |
/// | `read_only=true\|false` | refuse writes; open even while another process writes, where the backend allows | `false` |
/// | `create=true\|false` | create the store if it does not exist | `true` |
/// | `lock_timeout_ms=N` | wait this long for another writer before failing with `Locked` | backend's default |
/// | `verify=true\|false` | check the store's integrity before using it (for files from elsewhere) | `false` |
/// | `metrics=true\|false` | keep performance metrics ([`Store::metrics`](kgstore_core::Store::metrics)) | `true` |
/// | `slow_ms=N` | log (`warn`) and count operations slower than N milliseconds | off |
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// See [`Durability`].
    pub durability: Durability,
    /// Refuse writes.
    pub read_only: bool,
    /// Create the store if missing (`true` unless set to `false`).
    pub create_if_missing: Option<bool>,
    /// How long to wait for another writer.
    pub lock_timeout: Option<Duration>,
    /// Check integrity before use.
    pub verify: bool,
    /// Keep performance metrics (`None`: the default, on).
    pub metrics: Option<bool>,
    /// Log and count operations slower than this (`None`: off).
    pub slow_threshold: Option<Duration>,
    /// Parameters the common options do not cover, for custom backends.
    pub extra: BTreeMap<String, String>,
}

impl OpenOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Opens read-only.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Creates the store if it is missing (the default) or not.
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = Some(create);
        self
    }

    /// Waits up to `timeout` for another writer.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// Checks integrity before use.
    pub fn verify(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }

    /// Keeps performance metrics (the default) or not; see `docs/observability.md`
    /// for what they cost.
    pub fn metrics(mut self, metrics: bool) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Logs (at `warn`) and counts operations slower than `threshold`.
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow_threshold = Some(threshold);
        self
    }

    /// Whether to create a missing store.
    pub fn creates(&self) -> bool {
        self.create_if_missing.unwrap_or(true)
    }

    /// Opens `url` with these options on top of the URL's own parameters, through the
    /// global registry.
    pub fn open(&self, url: &str) -> Result<kgstore_core::Store> {
        crate::registry::global().open_url(&StoreUrl::parse(url)?.with_options(self))
    }

    /// Refuses parameters a built-in backend does not understand.
    pub fn refuse_extra(&self, backend: &str) -> Result<()> {
        match self.extra.keys().next() {
            None => Ok(()),
            Some(key) => Err(Error::invalid_input(
                format!("store URL parameter '{key}'"),
                format!(
                    "the {backend} backend knows durability, read_only, create, lock_timeout_ms, \
                     verify, metrics and slow_ms"
                ),
            )),
        }
    }
}

/// A parsed store URL: `memory://`, `sqlite://./data/kg.db?durability=relaxed`,
/// `json:///var/lib/kg?read_only=true`.
///
/// The path is everything between `://` and the first `?`, percent-decoded; it may be
/// relative. Parameters are `key=value` pairs joined by `&`, percent-decoded. A
/// percent escape is `%` and two hex digits (`%20` a space, `%3F` a `?` in a
/// path, `%25` a `%`); anything else after a `%` is refused, as is an escape
/// that decodes to NUL or to bytes that are not UTF-8.
#[derive(Clone, Debug)]
pub struct StoreUrl {
    /// The scheme, lower case: `memory`, `sqlite`, `json`, or a registered one.
    pub scheme: String,
    /// The path (empty for `memory://`).
    pub path: String,
    /// The options the parameters gave.
    pub options: OpenOptions,
    /// The URL as it was written (before percent-decoding), for messages: a
    /// refusal quotes what the user wrote, not what it decoded to.
    pub text: String,
}

/// Two URLs are equal when they name the same store with the same options, however
/// they were written (`sqlite://a%62` and `sqlite://ab`): [`StoreUrl::text`] aside.
impl PartialEq for StoreUrl {
    fn eq(&self, other: &Self) -> bool {
        self.scheme == other.scheme && self.path == other.path && self.options == other.options
    }
}

impl Eq for StoreUrl {}

impl StoreUrl {
    /// Parses a store URL.
    pub fn parse(text: &str) -> Result<Self> {
        let refuse = |reason: &str| Error::invalid_input(format!("store URL '{text}'"), reason);
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| refuse("expected scheme://path, e.g. sqlite://./data/kgstore.db"))?;
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_lowercase())
            || !scheme
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '+' || c == '-')
        {
            return Err(refuse(
                "the scheme must be lower-case letters, digits, '+' or '-'",
            ));
        }
        let (raw_path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let path = percent_decode(raw_path).map_err(|reason| refuse(&reason))?;
        if path.contains('\0') {
            return Err(refuse("the path holds a NUL character"));
        }
        let mut options = OpenOptions::default();
        let mut seen = std::collections::BTreeSet::new();
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| refuse(&format!("parameter '{pair}' has no '='")))?;
            let key = percent_decode(key).map_err(|reason| refuse(&reason))?;
            let value = percent_decode(value).map_err(|reason| refuse(&reason))?;
            if !seen.insert(key.clone()) {
                return Err(refuse(&format!("parameter '{key}' is given twice")));
            }
            // A bad value is refused with the whole URL as written and the
            // parameter as decoded.
            let bad = |expected: &str| {
                refuse(&format!(
                    "parameter {key}='{}': {expected}",
                    kgstore_core::validate::shorten(&value)
                ))
            };
            match key.as_str() {
                "durability" => {
                    options.durability = value
                        .parse()
                        .map_err(|_| bad("expected immediate or relaxed"))?;
                }
                "read_only" => options.read_only = parse_bool(&value).ok_or_else(|| bad(BOOL))?,
                "create" => {
                    options.create_if_missing = Some(parse_bool(&value).ok_or_else(|| bad(BOOL))?);
                }
                "verify" => options.verify = parse_bool(&value).ok_or_else(|| bad(BOOL))?,
                "metrics" => options.metrics = Some(parse_bool(&value).ok_or_else(|| bad(BOOL))?),
                "slow_ms" => {
                    options.slow_threshold = Some(parse_millis(&value).ok_or_else(|| bad(MILLIS))?);
                }
                "lock_timeout_ms" => {
                    options.lock_timeout = Some(parse_millis(&value).ok_or_else(|| bad(MILLIS))?);
                }
                _ => {
                    options.extra.insert(key, value);
                }
            }
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            path,
            options,
            text: text.to_owned(),
        })
    }

    /// Overrides this URL's options with those set explicitly in `options`.
    pub fn with_options(mut self, options: &OpenOptions) -> Self {
        let defaults = OpenOptions::default();
        if options.durability != defaults.durability {
            self.options.durability = options.durability;
        }
        if options.read_only {
            self.options.read_only = true;
        }
        if options.create_if_missing.is_some() {
            self.options.create_if_missing = options.create_if_missing;
        }
        if options.lock_timeout.is_some() {
            self.options.lock_timeout = options.lock_timeout;
        }
        if options.verify {
            self.options.verify = true;
        }
        if options.metrics.is_some() {
            self.options.metrics = options.metrics;
        }
        if options.slow_threshold.is_some() {
            self.options.slow_threshold = options.slow_threshold;
        }
        self.options
            .extra
            .extend(options.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    /// The path, refusing an empty one and one that starts with `~` (for
    /// file-based backends): no shell reads a store URL, so `~` would be a folder
    /// named `~` in the working folder rather than the home folder. The refusal
    /// quotes the URL as written; a `~` written as `%7E` is refused too, and the
    /// message says what the path decoded to.
    pub fn required_path(&self) -> Result<&str> {
        let written = if self.text.is_empty() {
            // Built in code rather than parsed: the parts are all there is.
            format!("{}://{}", self.scheme, self.path)
        } else {
            // Without its parameters, which a custom backend's may hold a secret in.
            self.text
                .split_once('?')
                .map_or_else(|| self.text.clone(), |(path, _)| path.to_owned())
        };
        let refuse =
            |reason: String| Error::invalid_input(format!("store URL '{written}'"), reason);
        let example = match self.scheme.as_str() {
            "sqlite" => "sqlite:///home/me/kg.db",
            "json" => "json:///home/me/kg",
            "git" => "git:///home/me/kg.git",
            _ => "sqlite:///home/me/kg.db",
        };
        if self.path.is_empty() {
            Err(refuse(format!(
                "a path is required, e.g. {} or {example}",
                example.replace("///home/me/", "//./data/")
            )))
        } else if self.path == "~" || self.path.starts_with("~/") {
            let written_tilde = self
                .text
                .split_once("://")
                .is_none_or(|(_, rest)| rest.starts_with('~'));
            let decoded = if written_tilde {
                String::new()
            } else {
                format!("its path decodes to '{}', and ", self.path)
            };
            Err(refuse(format!(
                "{decoded}'~' is not expanded in a store URL (no shell reads it): write the \
                 home folder's path, e.g. {example} (or ./~ for a folder named '~')"
            )))
        } else {
            Ok(&self.path)
        }
    }
}

/// What a boolean parameter takes.
const BOOL: &str = "expected true or false";
/// What a parameter in milliseconds takes.
const MILLIS: &str = "expected a whole number of milliseconds";

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Digits only: `u64::from_str` would also take a leading `+`.
fn parse_millis(value: &str) -> Option<Duration> {
    parse_digits(value).map(Duration::from_millis)
}

/// A whole number written in digits only (`u64::from_str` also takes `+5`).
pub(crate) fn parse_digits(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn percent_decode(text: &str) -> std::result::Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits, nothing else (`u8::from_str_radix` would also take
            // `%+1` as the byte 1).
            let (Some(&high), Some(&low)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return Err(format!(
                    "'{}' at the end: a '%' starts an escape of two hex digits (%25 for a '%' itself)",
                    &text[i..]
                ));
            };
            let (Some(high), Some(low)) = (hex_value(high), hex_value(low)) else {
                let shown: String = text[i..].chars().take(3).collect();
                return Err(format!(
                    "'{shown}' is not a percent escape: a '%' takes two hex digits (%25 for a '%' itself)"
                ));
            };
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent escapes do not form UTF-8".to_owned())
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_parameters() {
        let url = StoreUrl::parse("sqlite://./data/kg%20store.db?durability=relaxed&read_only=true&lock_timeout_ms=250&x=y&metrics=false&slow_ms=40").unwrap();
        assert_eq!(url.options.metrics, Some(false));
        assert_eq!(url.options.slow_threshold, Some(Duration::from_millis(40)));
        assert_eq!(url.scheme, "sqlite");
        assert_eq!(url.path, "./data/kg store.db");
        assert_eq!(url.options.durability, Durability::Relaxed);
        assert!(url.options.read_only);
        assert_eq!(url.options.lock_timeout, Some(Duration::from_millis(250)));
        assert_eq!(url.options.extra.get("x").map(String::as_str), Some("y"));
        let url = StoreUrl::parse("json:///abs/path").unwrap();
        assert_eq!(url.path, "/abs/path");
        assert_eq!(StoreUrl::parse("memory://").unwrap().path, "");
    }

    #[test]
    fn refuses_malformed_urls() {
        for bad in [
            "",
            "sqlite",
            "./data/kg.db",
            "SQLite://x",
            "sq lite://x",
            "sqlite://x?durability=fast",
            "sqlite://x?read_only=maybe",
            "sqlite://x?read_only",
            "sqlite://x?create=true&create=false",
            "sqlite://x?lock_timeout_ms=-1",
            "sqlite://x?slow_ms=fast",
            "sqlite://x?slow_ms=1.5",
            "sqlite://x?metrics=sometimes",
            "sqlite://x%2",
            "sqlite://x%zz",
            "sqlite://x%00y",
            "sqlite://%ff",
            "sqlite://x%+1",
            "sqlite://x%-1",
            "sqlite://x% 1",
            "sqlite://x%1",
            "sqlite://x%",
            "sqlite://x%é1",
            "sqlite://x?slow_ms=+5",
            "sqlite://x?lock_timeout_ms=",
        ] {
            let err = StoreUrl::parse(bad).unwrap_err();
            assert_eq!(err.kind(), kgstore_core::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn a_file_store_needs_a_path_without_a_tilde() {
        for (bad, says) in [
            ("sqlite://", "sqlite://./data/kg.db"),
            ("json://", "json://./data/kg"),
            ("sqlite://~/kg.db", "sqlite:///home/me/kg.db"),
            ("json://~", "json:///home/me/kg"),
            ("git://~/kg.git?branch=x", "git:///home/me/kg.git"),
        ] {
            let err = StoreUrl::parse(bad).unwrap().required_path().unwrap_err();
            assert_eq!(err.kind(), kgstore_core::ErrorKind::InvalidInput, "{bad}");
            assert!(err.to_string().contains(says), "{bad}: {err}");
        }
        for good in [
            "sqlite://./~/kg.db",
            "sqlite://~x/kg.db",
            "json:///tmp/~/kg",
        ] {
            assert!(
                StoreUrl::parse(good).unwrap().required_path().is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn a_refusal_quotes_the_url_as_written() {
        // A '~' written as %7E is still not the home folder: the message shows
        // what was written and what it decoded to.
        let err = StoreUrl::parse("sqlite://%7E/kg.db?durability=relaxed")
            .unwrap()
            .required_path()
            .unwrap_err()
            .to_string();
        // Quoted without its parameters (a custom backend's may hold a secret).
        assert!(
            err.contains("'sqlite://%7E/kg.db'") && !err.contains("durability"),
            "{err}"
        );
        assert!(err.contains("decodes to '~/kg.db'"), "{err}");
        assert!(err.contains("'~' is not expanded"), "{err}");
        // A '~' written as such needs no decoding note.
        let err = StoreUrl::parse("json://~")
            .unwrap()
            .required_path()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'json://~'") && !err.contains("decodes"),
            "{err}"
        );
        // Escapes and parameter values: the URL as written, then the reason.
        for (bad, says) in [
            ("sqlite://x%+1.db", "'%+1' is not a percent escape"),
            ("sqlite://50%.db", "'%.d' is not a percent escape"),
            ("sqlite://x.db%4", "'%4' at the end"),
            (
                "sqlite://x.db?read_only=%6Eope",
                "read_only='nope': expected true or false",
            ),
            (
                "sqlite://x.db?durability=fast",
                "durability='fast': expected immediate or relaxed",
            ),
            (
                "sqlite://x.db?slow_ms=%2B5",
                "slow_ms='+5': expected a whole number",
            ),
        ] {
            let err = StoreUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("store URL '{bad}'")), "{bad}: {err}");
            assert!(err.contains(says), "{bad}: {err}");
        }
        // A value is quoted shortened and escaped: no terminal escape gets through.
        let err = StoreUrl::parse("sqlite://x.db?durability=%1B[31mred")
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\u{1b}'), "{err:?}");
        assert!(err.contains("expected immediate or relaxed"), "{err}");
        // The same store however written: equal.
        assert_eq!(
            StoreUrl::parse("sqlite://a%62?slow_ms=5").unwrap(),
            StoreUrl::parse("sqlite://ab?slow_ms=5").unwrap()
        );
        assert_ne!(
            StoreUrl::parse("sqlite://ab").unwrap(),
            StoreUrl::parse("sqlite://ab?slow_ms=5").unwrap()
        );
        // What the escapes are for still works.
        let url = StoreUrl::parse("sqlite://a%3Fb%25c%7e/d.db?slow_ms=%35").unwrap();
        assert_eq!(url.path, "a?b%c~/d.db");
        assert_eq!(url.options.slow_threshold, Some(Duration::from_millis(5)));
        assert_eq!(url.required_path().unwrap(), "a?b%c~/d.db");
    }

    #[test]
    fn explicit_options_override_the_url() {
        let url = StoreUrl::parse("sqlite://x?durability=relaxed&create=false").unwrap();
        let merged = url.with_options(&OpenOptions::new().read_only(true).create_if_missing(true));
        assert!(merged.options.read_only);
        assert!(merged.options.creates());
        assert_eq!(merged.options.durability, Durability::Relaxed);
    }
}
