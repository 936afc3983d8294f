//! Season and episode numbers, from a title page or a file name.

use crate::model::TitlePage;

/// A season and an episode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeasonEpisode {
    /// The season (1 for `S01E02`).
    pub season: u32,
    /// The episode (2 for `S01E02`).
    pub episode: u32,
}

impl SeasonEpisode {
    /// From a file name: `S01E02` (any case, anywhere in the name, as in
    /// `Show S01E02 - Pilot.fountain`), or `1x05` standing apart from other
    /// letters and digits. `None` when the name has neither.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let bytes = name.as_bytes();
        // S<digits>E<digits>, not preceded by a letter or digit.
        for (i, &b) in bytes.iter().enumerate() {
            if !b.eq_ignore_ascii_case(&b's') || (i > 0 && is_word(bytes.get(i - 1))) {
                continue;
            }
            let Some((season, after)) = digits(bytes, i + 1) else {
                continue;
            };
            if !bytes
                .get(after)
                .is_some_and(|e| e.eq_ignore_ascii_case(&b'e'))
            {
                continue;
            }
            if let Some((episode, end)) = digits(bytes, after + 1)
                && !bytes.get(end).is_some_and(u8::is_ascii_digit)
            {
                return Some(Self { season, episode });
            }
        }
        // <digits>x<digits>, standing apart.
        for (i, &b) in bytes.iter().enumerate() {
            if !b.is_ascii_digit() || (i > 0 && is_word(bytes.get(i - 1))) {
                continue;
            }
            let Some((season, after)) = digits(bytes, i) else {
                continue;
            };
            if !bytes
                .get(after)
                .is_some_and(|x| x.eq_ignore_ascii_case(&b'x'))
            {
                continue;
            }
            if let Some((episode, end)) = digits(bytes, after + 1)
                && !is_word(bytes.get(end))
            {
                return Some(Self { season, episode });
            }
        }
        None
    }

    /// From a title page's `Season` and `Episode` fields (a number each,
    /// possibly with text around it: `Episode: 3`, `Season: Season 2`). Both
    /// must be there.
    pub fn from_title_page(page: &TitlePage) -> Option<Self> {
        let number = |key: &str| {
            let value = page.get(key)?;
            let start = value.find(|c: char| c.is_ascii_digit())?;
            digits(value.as_bytes(), start).map(|(n, _)| n)
        };
        Some(Self {
            season: number("season")?,
            episode: number("episode")?,
        })
    }
}

fn is_word(b: Option<&u8>) -> bool {
    b.is_some_and(u8::is_ascii_alphanumeric)
}

/// The number of one to nine digits at `start`, and where it ends.
fn digits(bytes: &[u8], start: usize) -> Option<(u32, usize)> {
    let run = bytes
        .get(start..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if run == 0 || run > 9 {
        return None;
    }
    let text = std::str::from_utf8(bytes.get(start..start + run)?).ok()?;
    Some((text.parse().ok()?, start + run))
}
