//! Generated screenplays for benchmarks and tests: a series of episodes of
//! plausible Fountain, the same for the same seed.

/// One generated episode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedScript {
    /// A file name such as `S01E03 - Episode 3.fountain`.
    pub file_name: String,
    /// The Fountain text.
    pub text: String,
    /// How many scene headings it has.
    pub scenes: usize,
}

const CAST: &[&str] = &[
    "ADA", "BRUNO", "CELESTE", "DMITRI", "ESME", "FARID", "GRETA", "HUGO", "INES", "JONAH",
];
const PLACES: &[&str] = &[
    "HARBOUR OFFICE",
    "LIGHTHOUSE",
    "FERRY DECK",
    "FISH MARKET",
    "ADA'S KITCHEN",
    "TOWN HALL",
    "COASTAL ROAD",
    "RADIO BOOTH",
];
const TIMES: &[&str] = &["DAY", "NIGHT", "MORNING", "EVENING", "CONTINUOUS"];
const WORDS: &[&str] = &[
    "the",
    "tide",
    "comes",
    "in",
    "slowly",
    "and",
    "nobody",
    "notices",
    "a",
    "light",
    "blinks",
    "twice",
    "over",
    "water",
    "someone",
    "keeps",
    "counting",
    "boats",
    "rope",
    "salt",
    "wind",
    "*quietly*",
    "_again_",
    "no",
    "yes",
    "maybe",
    "tomorrow",
    "before",
    "dark",
];

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items.get(self.below(items.len())).copied().unwrap_or("")
    }

    fn sentence(&mut self, min: usize, max: usize) -> String {
        let n = min + self.below(max - min + 1);
        let mut s = String::new();
        for i in 0..n {
            let w = self.pick(WORDS);
            if i == 0 {
                let mut chars = w.chars();
                if let Some(c) = chars.next() {
                    s.extend(c.to_uppercase());
                    s.push_str(chars.as_str());
                }
            } else {
                s.push(' ');
                s.push_str(w);
            }
        }
        s.push('.');
        s
    }
}

/// A series of `episodes` episodes of `scenes_per_episode` scenes each, for
/// season 1. Each episode has a title page (with `Season` and `Episode`
/// fields), sections, synopses, scene numbers, action, dialogue with
/// parentheticals and extensions, dual dialogue, transitions and notes.
pub fn series(episodes: usize, scenes_per_episode: usize, seed: u64) -> Vec<GeneratedScript> {
    let mut rng = Rng(seed);
    (1..=episodes)
        .map(|episode| {
            let mut t = String::new();
            t.push_str(&format!(
                "Title: Episode {episode}\nCredit: Written by\nAuthor: The Generator\nSeason: 1\nEpisode: {episode}\nDraft date: 2026-12-01\n\n"
            ));
            for scene in 1..=scenes_per_episode {
                if scene % 10 == 1 {
                    t.push_str(&format!("# ACT {}\n\n", scene / 10 + 1));
                    t.push_str(&format!("= {}\n\n", rng.sentence(4, 9)));
                }
                let int_ext = if rng.below(3) == 0 { "EXT" } else { "INT" };
                t.push_str(&format!(
                    "{int_ext}. {} - {} #{scene}#\n\n",
                    rng.pick(PLACES),
                    rng.pick(TIMES)
                ));
                t.push_str(&rng.sentence(6, 20));
                t.push_str("\n\n");
                let speeches = 2 + rng.below(5);
                let mut previous = usize::MAX;
                for s in 0..speeches {
                    // Nobody answers themselves.
                    let mut index = rng.below(CAST.len());
                    if index == previous {
                        index = (index + 1) % CAST.len();
                    }
                    previous = index;
                    let who = CAST.get(index).copied().unwrap_or("ADA");
                    let extension = match rng.below(12) {
                        0 => " (V.O.)",
                        1 => " (O.S.)",
                        2 => " (CONT'D)",
                        _ => "",
                    };
                    let dual = if s > 0 && rng.below(15) == 0 { " ^" } else { "" };
                    t.push_str(&format!("{who}{extension}{dual}\n"));
                    if rng.below(4) == 0 {
                        t.push_str("(beat)\n");
                    }
                    t.push_str(&rng.sentence(3, 14));
                    t.push('\n');
                    if rng.below(5) == 0 {
                        t.push_str(&rng.sentence(2, 8));
                        t.push('\n');
                    }
                    t.push('\n');
                }
                if rng.below(8) == 0 {
                    t.push_str("[[Check this scene's timing.]]\n\n");
                }
                if rng.below(6) == 0 {
                    t.push_str("CUT TO:\n\n");
                }
            }
            t.push_str("> THE END <\n");
            GeneratedScript {
                file_name: format!("S01E{episode:02} - Episode {episode}.fountain"),
                text: t,
                scenes: scenes_per_episode,
            }
        })
        .collect()
}
