//! What an importer reads from a parsed script without parsing again: scenes
//! with their spans and heading parts, speeches, and who speaks where.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

use crate::heading::HeadingParts;
use crate::model::{Cue, Element, SceneHeading, Span, Spanned, canonical};
use crate::script::Script;
use crate::text::words;

/// A scene: a heading and every element up to the next heading (blank lines,
/// sections and transitions at its end included), or the prologue — what comes
/// before the first heading, after the title page.
#[derive(Clone, Debug)]
pub struct Scene<'a> {
    script: &'a Script,
    /// 1 for the first heading, 2 for the second …; 0 for the prologue.
    pub ordinal: usize,
    /// The heading; `None` for the prologue.
    pub heading: Option<&'a SceneHeading>,
    /// The source the scene was read from. Scenes, the title page's span and
    /// the prologue's tile the source.
    pub span: Span,
    /// Its elements' indices in [`Script::elements`].
    pub elements: Range<usize>,
}

impl<'a> Scene<'a> {
    /// The scene's source text, byte for byte (hash it for a content hash).
    pub fn text(&self) -> &'a str {
        self.script.slice(self.span)
    }

    /// Its elements, with their spans.
    pub fn elements(&self) -> &'a [Spanned<Element>] {
        self.script
            .elements()
            .get(self.elements.clone())
            .unwrap_or(&[])
    }

    /// The heading's parts: interior/exterior, location, time of day.
    pub fn parts(&self) -> Option<HeadingParts> {
        self.heading.map(SceneHeading::parts)
    }

    /// True when it has an element that is not layout (for a prologue of
    /// nothing but blank lines, false).
    pub fn has_content(&self) -> bool {
        self.elements().iter().any(|e| !e.value.is_layout())
    }

    /// Its speeches in order: each cue with the parentheticals and dialogue
    /// after it.
    pub fn speeches(&self) -> Vec<Speech<'a>> {
        let elements = self.elements();
        let mut speeches: Vec<Speech<'a>> = Vec::new();
        // Whether only layout elements stand between the last speech and here.
        let mut after_speech = false;
        let mut i = 0;
        while let Some(element) = elements.get(i) {
            let Element::Character(cue) = &element.value else {
                if !element.value.is_layout() {
                    after_speech = false;
                }
                i += 1;
                continue;
            };
            let mut speech = Speech {
                cue,
                character: cue.canonical_name(),
                span: element.span,
                elements: self.elements.start + i..self.elements.start + i + 1,
                parentheticals: Vec::new(),
                dialogue: String::new(),
                lines: 0,
                words: 0,
                dual_with: None,
            };
            let mut j = i + 1;
            let mut last = i;
            while let Some(next) = elements.get(j) {
                match &next.value {
                    Element::Parenthetical { text } => speech.parentheticals.push(text),
                    Element::Dialogue { text } => {
                        if !speech.dialogue.is_empty() {
                            speech.dialogue.push('\n');
                        }
                        speech.dialogue.push_str(text);
                        speech.lines += text.split('\n').count();
                        speech.words += words(text);
                    }
                    Element::Boneyard { .. } => {
                        j += 1;
                        continue;
                    }
                    _ => break,
                }
                last = j;
                j += 1;
            }
            if let (Some(first), Some(end)) = (elements.get(i), elements.get(last)) {
                speech.span = Span::new(first.span.start, end.span.end);
            }
            speech.elements = self.elements.start + i..self.elements.start + last + 1;
            // A `^` pairs the cue with the speech just before it, unless that one
            // is already half of a pair.
            let this = speeches.len();
            if cue.dual
                && after_speech
                && let Some(partner) = this.checked_sub(1)
                && let Some(p) = speeches.get_mut(partner)
                && p.dual_with.is_none()
            {
                p.dual_with = Some(this);
                speech.dual_with = Some(partner);
            }
            speeches.push(speech);
            after_speech = true;
            i = last + 1;
        }
        speeches
    }

    /// Who speaks in the scene, in order of first cue, with their counts.
    pub fn characters(&self) -> Vec<CharacterStats> {
        self.characters_from(&self.speeches())
    }

    /// [`Scene::characters`] from the scene's speeches, when they are at hand.
    pub fn characters_from(&self, speeches: &[Speech<'_>]) -> Vec<CharacterStats> {
        let mut out: Vec<CharacterStats> = Vec::new();
        let mut index_of: HashMap<&str, usize> = HashMap::new();
        let mut seen: HashSet<(usize, &str)> = HashSet::new();
        for speech in speeches {
            let index = *index_of
                .entry(speech.character.as_str())
                .or_insert_with(|| {
                    out.push(CharacterStats {
                        name: speech.character.clone(),
                        scenes: vec![self.ordinal],
                        ..CharacterStats::default()
                    });
                    out.len() - 1
                });
            if let Some(c) = out.get_mut(index) {
                if seen.insert((index, speech.cue.name.as_str())) {
                    c.aliases.push(speech.cue.name.clone());
                }
                c.add_speech(speech);
            }
        }
        out
    }

    /// How many of each kind of element the scene has.
    pub fn counts(&self) -> SceneCounts {
        self.counts_with(&self.characters())
    }

    /// [`Scene::counts`] when the scene's characters are at hand already.
    pub fn counts_with(&self, characters: &[CharacterStats]) -> SceneCounts {
        let mut counts = SceneCounts::default();
        for element in self.elements() {
            match &element.value {
                Element::Action { text, .. } => {
                    counts.actions += 1;
                    counts.action_words += words(text);
                }
                Element::Character(_) => counts.speeches += 1,
                Element::Dialogue { text } => {
                    counts.dialogue_lines += text.split('\n').count();
                    counts.dialogue_words += words(text);
                }
                Element::Parenthetical { .. } => counts.parentheticals += 1,
                Element::Lyrics { .. } => counts.lyrics += 1,
                Element::Transition { .. } => counts.transitions += 1,
                Element::Centered { .. } => counts.centered += 1,
                Element::Note { .. } => counts.notes += 1,
                Element::Section { .. } => counts.sections += 1,
                Element::Synopsis { .. } => counts.synopses += 1,
                Element::PageBreak => counts.page_breaks += 1,
                Element::SceneHeading(_)
                | Element::TitlePage(_)
                | Element::Boneyard { .. }
                | Element::Blank { .. } => {}
            }
        }
        counts.characters = characters.len();
        counts
    }
}

/// A cue and what it says: the parentheticals and dialogue after it.
#[derive(Clone, Debug)]
pub struct Speech<'a> {
    /// The cue as written.
    pub cue: &'a Cue,
    /// The character's canonical name ([`Cue::canonical_name`]).
    pub character: String,
    /// From the cue to the end of its last parenthetical or dialogue.
    pub span: Span,
    /// Its elements' indices in [`Script::elements`].
    pub elements: Range<usize>,
    /// The parentheticals, in order.
    pub parentheticals: Vec<&'a str>,
    /// The dialogue, its elements joined with `\n`.
    pub dialogue: String,
    /// Lines of dialogue as written (a cue without dialogue has none).
    pub lines: usize,
    /// Words of dialogue.
    pub words: usize,
    /// For dual dialogue, the index (in the scene's speeches) of the speech
    /// spoken at the same time: the one just before a cue marked `^` (with
    /// only layout between), and the marked one for the one before it. A `^`
    /// after a speech that is already paired has no partner.
    pub dual_with: Option<usize>,
}

/// A character's part in a scene ([`Scene::characters`]) or in a whole script
/// ([`Script::characters`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CharacterStats {
    /// The canonical name.
    pub name: String,
    /// The names as written in the cues (without extensions), distinct, in
    /// order of first use.
    pub aliases: Vec<String>,
    /// Speeches: how many times a cue names the character. This is the "line
    /// count" of screenplay tools.
    pub speeches: usize,
    /// Lines of dialogue as written.
    pub lines: usize,
    /// Words of dialogue.
    pub words: usize,
    /// Speeches marked voice-over (`V.O.`).
    pub voice_over: usize,
    /// Speeches marked off screen (`O.S.`, `O.C.`).
    pub off_screen: usize,
    /// Speeches that are half of a dual dialogue.
    pub dual: usize,
    /// The ordinals of the scenes the character speaks in, ascending (0 is the
    /// prologue); one for a scene's own stats.
    pub scenes: Vec<usize>,
}

impl CharacterStats {
    fn add_speech(&mut self, speech: &Speech<'_>) {
        self.speeches += 1;
        self.lines += speech.lines;
        self.words += speech.words;
        self.voice_over += usize::from(speech.cue.is_voice_over());
        self.off_screen += usize::from(speech.cue.is_off_screen());
        self.dual += usize::from(speech.dual_with.is_some());
    }

    fn add(&mut self, other: &CharacterStats) {
        self.speeches += other.speeches;
        self.lines += other.lines;
        self.words += other.words;
        self.voice_over += other.voice_over;
        self.off_screen += other.off_screen;
        self.dual += other.dual;
        self.scenes.extend_from_slice(&other.scenes);
    }
}

/// How many of each kind of element a scene has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SceneCounts {
    /// Action paragraphs.
    pub actions: usize,
    /// Words of action.
    pub action_words: usize,
    /// Cues.
    pub speeches: usize,
    /// Lines of dialogue as written.
    pub dialogue_lines: usize,
    /// Words of dialogue.
    pub dialogue_words: usize,
    /// Parentheticals.
    pub parentheticals: usize,
    /// Lyrics paragraphs.
    pub lyrics: usize,
    /// Transitions.
    pub transitions: usize,
    /// Centred texts.
    pub centered: usize,
    /// Standalone notes.
    pub notes: usize,
    /// Sections.
    pub sections: usize,
    /// Synopses.
    pub synopses: usize,
    /// Page breaks.
    pub page_breaks: usize,
    /// Distinct characters who speak.
    pub characters: usize,
}

/// Two characters who speak in the same scenes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoAppearance {
    /// One canonical name (the smaller).
    pub a: String,
    /// The other (the larger).
    pub b: String,
    /// The ordinals of the scenes both speak in, ascending.
    pub scenes: Vec<usize>,
}

impl Script {
    /// The scenes with a heading, in order (ordinals 1, 2, …).
    pub fn scenes(&self) -> Vec<Scene<'_>> {
        let headings: Vec<usize> = self
            .elements()
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e.value, Element::SceneHeading(_)))
            .map(|(i, _)| i)
            .collect();
        let mut scenes = Vec::with_capacity(headings.len());
        for (n, &index) in headings.iter().enumerate() {
            let end_index = headings
                .get(n + 1)
                .copied()
                .unwrap_or(self.elements().len());
            let Some(Element::SceneHeading(heading)) = self.elements().get(index).map(|e| &e.value)
            else {
                continue;
            };
            scenes.push(Scene {
                script: self,
                ordinal: n + 1,
                heading: Some(heading),
                span: self.span_of(index..end_index),
                elements: index..end_index,
            });
        }
        scenes
    }

    /// What comes before the first heading, after the title page (ordinal 0),
    /// if anything does.
    pub fn prologue(&self) -> Option<Scene<'_>> {
        let start = self.title_page_end();
        let end = self
            .elements()
            .iter()
            .position(|e| matches!(e.value, Element::SceneHeading(_)))
            .unwrap_or(self.elements().len());
        (start < end).then(|| Scene {
            script: self,
            ordinal: 0,
            heading: None,
            span: self.span_of(start..end),
            elements: start..end,
        })
    }

    /// The span of the title page with any boneyard lines before it, from the
    /// start of the content (after the byte-order mark); `None` without a title page.
    pub fn title_page_span(&self) -> Option<Span> {
        let end = self.title_page_end();
        (end > 0).then(|| self.span_of(0..end))
    }

    /// Index of the first element after the title page (0 without one).
    fn title_page_end(&self) -> usize {
        self.elements()
            .iter()
            .position(|e| matches!(e.value, Element::TitlePage(_)))
            .map_or(0, |i| i + 1)
    }

    fn span_of(&self, elements: Range<usize>) -> Span {
        let slice = self.elements().get(elements).unwrap_or(&[]);
        match (slice.first(), slice.last()) {
            (Some(first), Some(last)) => Span::new(first.span.start, last.span.end),
            _ => Span::new(self.content_start(), self.content_start()),
        }
    }

    /// Every character who speaks, in order of first cue, with their counts
    /// over the whole script.
    pub fn characters(&self) -> Vec<CharacterStats> {
        let mut out: Vec<CharacterStats> = Vec::new();
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut seen: HashSet<(usize, String)> = HashSet::new();
        for scene in self.prologue().into_iter().chain(self.scenes()) {
            for c in scene.characters() {
                let index = *index_of.entry(c.name.clone()).or_insert_with(|| {
                    out.push(CharacterStats {
                        name: c.name.clone(),
                        ..CharacterStats::default()
                    });
                    out.len() - 1
                });
                if let Some(total) = out.get_mut(index) {
                    for alias in &c.aliases {
                        if seen.insert((index, alias.clone())) {
                            total.aliases.push(alias.clone());
                        }
                    }
                    total.add(&c);
                }
            }
        }
        out
    }

    /// Every pair of characters who speak in the same scene, with those
    /// scenes, ordered by the pair's names. (The answer grows with the square of
    /// the number of characters in a scene.)
    pub fn co_appearances(&self) -> Vec<CoAppearance> {
        let mut pairs: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        for scene in self.prologue().into_iter().chain(self.scenes()) {
            let mut names: Vec<String> = scene.characters().into_iter().map(|c| c.name).collect();
            names.sort();
            for (i, a) in names.iter().enumerate() {
                for b in names.iter().skip(i + 1) {
                    pairs
                        .entry((a.clone(), b.clone()))
                        .or_default()
                        .push(scene.ordinal);
                }
            }
        }
        pairs
            .into_iter()
            .map(|((a, b), scenes)| CoAppearance { a, b, scenes })
            .collect()
    }
}

/// The canonical name of a character named by a cue line (`@McCLANE (V.O.) ^`
/// → `MCCLANE`), or `None` when the line is not a cue.
pub fn character_name(cue_line: &str) -> Option<String> {
    Cue::parse(cue_line).map(|c| canonical(&c.name))
}
