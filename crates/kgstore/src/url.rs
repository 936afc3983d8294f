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
/// The path is everything between `://` and `?`, percent-decoded; it may be
/// relative. Parameters are `key=value` pairs joined by `&`, percent-decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreUrl {
    /// The scheme, lower case: `memory`, `sqlite`, `json`, or a registered one.
    pub scheme: String,
    /// The path (empty for `memory://`).
    pub path: String,
    /// The options the parameters gave.
    pub options: OpenOptions,
}

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
            match key.as_str() {
                "durability" => options.durability = value.parse()?,
                "read_only" => options.read_only = parse_bool(&key, &value)?,
                "create" => options.create_if_missing = Some(parse_bool(&key, &value)?),
                "verify" => options.verify = parse_bool(&key, &value)?,
                "metrics" => options.metrics = Some(parse_bool(&key, &value)?),
                "slow_ms" => options.slow_threshold = Some(parse_millis(&key, &value)?),
                "lock_timeout_ms" => options.lock_timeout = Some(parse_millis(&key, &value)?),
                _ => {
                    options.extra.insert(key, value);
                }
            }
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            path,
            options,
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
    /// named `~` in the working folder rather than the home folder.
    pub fn required_path(&self) -> Result<&str> {
        let refuse = |reason: String| {
            Error::invalid_input(
                format!("store URL '{}://{}'", self.scheme, self.path),
                reason,
            )
        };
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
            Err(refuse(format!(
                "'~' is not expanded in a store URL (no shell reads it): write the home \
                 folder's path, e.g. {example}"
            )))
        } else {
            Ok(&self.path)
        }
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(Error::invalid_input(
            format!("{key} '{value}'"),
            "expected true or false",
        )),
    }
}

fn parse_millis(key: &str, value: &str) -> Result<Duration> {
    let ms: u64 = value.parse().map_err(|_| {
        Error::invalid_input(
            format!("{key} '{value}'"),
            "expected a whole number of milliseconds",
        )
    })?;
    Ok(Duration::from_millis(ms))
}

fn percent_decode(text: &str) -> std::result::Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .ok_or("a '%' is not followed by two hex digits")?;
            let byte = u8::from_str_radix(hex, 16)
                .map_err(|_| format!("'%{hex}' is not a percent escape"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent escapes do not form UTF-8".to_owned())
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
    fn explicit_options_override_the_url() {
        let url = StoreUrl::parse("sqlite://x?durability=relaxed&create=false").unwrap();
        let merged = url.with_options(&OpenOptions::new().read_only(true).create_if_missing(true));
        assert!(merged.options.read_only);
        assert!(merged.options.creates());
        assert_eq!(merged.options.durability, Durability::Relaxed);
    }
}
