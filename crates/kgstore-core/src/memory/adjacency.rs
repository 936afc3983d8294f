//! One node's edges in one direction, keyed by `(relation id, other end's id)`.

use std::sync::Arc;

use imbl::OrdMap;
use imbl::shared_ptr::DefaultSharedPtr;

use super::graph::{Id, Rel};

/// The key of an edge in one node's list: the relation and the other end.
pub(super) type End = (Rel, Id);

/// Lists longer than this become persistent maps; maps shorter than half of it
/// become lists again.
const SMALL: usize = 64;

/// One node's edges in one direction, sorted by [`End`].
///
/// Most nodes have a few edges: they get one exact-size shared slice, which a
/// write replaces whole (at most [`SMALL`] entries copied). A node with many
/// edges gets a persistent ordered map instead, so that adding one edge to a hub
/// copies a path, not the hub's whole list.
#[derive(Clone, Default)]
pub(super) enum Adjacency<T: Clone> {
    /// No edges.
    #[default]
    Empty,
    /// A few edges, sorted.
    Small(Arc<[(End, T)]>),
    /// Many edges.
    Large(OrdMap<End, T>),
}

impl<T: Clone> Adjacency<T> {
    /// How many edges there are.
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::Small(list) => list.len(),
            Self::Large(map) => map.len(),
        }
    }

    /// Whether there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The edge to `end`.
    pub(super) fn get(&self, end: &End) -> Option<&T> {
        match self {
            Self::Empty => None,
            Self::Small(list) => list
                .binary_search_by(|(e, _)| e.cmp(end))
                .ok()
                .map(|i| &list[i].1),
            Self::Large(map) => map.get(end),
        }
    }

    /// Every edge, sorted by [`End`].
    pub(super) fn iter(&self) -> Iter<'_, T> {
        match self {
            Self::Empty => Iter::Small([].iter()),
            Self::Small(list) => Iter::Small(list.iter()),
            Self::Large(map) => Iter::Large(map.iter()),
        }
    }

    /// The edges of `list`, sorted by [`End`] without repeats.
    pub(super) fn from_sorted(list: Vec<(End, T)>) -> Self {
        match list.len() {
            0 => Self::Empty,
            n if n > SMALL => Self::Large(list.into_iter().collect()),
            _ => Self::Small(Arc::from(list)),
        }
    }

    /// Adds or replaces the edge to `end`; the replaced value.
    pub(super) fn insert(&mut self, end: End, value: T) -> Option<T> {
        match self {
            Self::Empty => {
                *self = Self::Small(Arc::from([(end, value)]));
                None
            }
            Self::Small(list) => match list.binary_search_by(|(e, _)| e.cmp(&end)) {
                Ok(i) => {
                    let mut copy: Vec<(End, T)> = list.to_vec();
                    let old = std::mem::replace(&mut copy[i].1, value);
                    *list = Arc::from(copy);
                    Some(old)
                }
                Err(_) if list.len() >= SMALL => {
                    let mut map: OrdMap<End, T> = list.iter().cloned().collect();
                    map.insert(end, value);
                    *self = Self::Large(map);
                    None
                }
                Err(i) => {
                    *list = list[..i]
                        .iter()
                        .cloned()
                        .chain(std::iter::once((end, value)))
                        .chain(list[i..].iter().cloned())
                        .collect();
                    None
                }
            },
            Self::Large(map) => map.insert(end, value),
        }
    }

    /// Adds or replaces the edges of `new` (sorted by [`End`], without
    /// repeats), as [`Adjacency::insert`] one after the other would, but
    /// copying a list once for all of them: inserting `k` edges one by one
    /// into a list makes `k` copies of growing size and frees all but the last,
    /// and a load that does that for every node leaves the allocator tens of
    /// thousands of scattered free blocks to sort on its next requests.
    pub(super) fn merge(&mut self, new: Vec<(End, T)>) {
        if new.is_empty() {
            return;
        }
        match self {
            Self::Empty => *self = Self::from_sorted(new),
            Self::Small(list) => {
                let mut merged: Vec<(End, T)> = Vec::with_capacity(list.len() + new.len());
                let mut old = list.iter().peekable();
                for (end, value) in new {
                    while let Some(kept) = old.next_if(|(e, _)| *e < end) {
                        merged.push(kept.clone());
                    }
                    // Replaced by the new value.
                    old.next_if(|(e, _)| *e == end);
                    merged.push((end, value));
                }
                merged.extend(old.cloned());
                *self = Self::from_sorted(merged);
            }
            Self::Large(map) => {
                for (end, value) in new {
                    map.insert(end, value);
                }
            }
        }
    }

    /// Removes the edge to `end`; its value.
    pub(super) fn remove(&mut self, end: &End) -> Option<T> {
        match self {
            Self::Empty => None,
            Self::Small(list) => {
                let i = list.binary_search_by(|(e, _)| e.cmp(end)).ok()?;
                let old = list[i].1.clone();
                *self = if list.len() == 1 {
                    Self::Empty
                } else {
                    Self::Small(list[..i].iter().chain(&list[i + 1..]).cloned().collect())
                };
                Some(old)
            }
            Self::Large(map) => {
                let old = map.remove(end)?;
                if map.len() < SMALL / 2 {
                    *self = Self::Small(map.iter().map(|(e, v)| (*e, v.clone())).collect());
                }
                Some(old)
            }
        }
    }
}

/// The edges of an [`Adjacency`], sorted by [`End`].
pub(super) enum Iter<'a, T> {
    /// Of a list (or of none).
    Small(std::slice::Iter<'a, (End, T)>),
    /// Of a map.
    Large(imbl::ordmap::Iter<'a, End, T, DefaultSharedPtr>),
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (&'a End, &'a T);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Small(it) => it.next().map(|(end, value)| (end, value)),
            Self::Large(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::Small(it) => it.size_hint(),
            Self::Large(it) => it.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn lists_grow_into_maps_and_shrink_back_keeping_order_and_values() {
        let mut adj: Adjacency<usize> = Adjacency::default();
        let mut model = std::collections::BTreeMap::new();
        // A scrambled order of 3 relations × 100 ends: far past SMALL, then back.
        let keys: Vec<End> = (0..300).map(|i| ((i * 7) % 3, (i * 37) % 100)).collect();
        for (n, key) in keys.iter().enumerate() {
            assert_eq!(adj.insert(*key, n), model.insert(*key, n));
            assert_eq!(adj.len(), model.len());
        }
        assert!(matches!(adj, Adjacency::Large(_)));
        let snapshot = adj.clone();
        for key in keys.iter().take(280) {
            assert_eq!(adj.remove(key), model.remove(key));
            assert_eq!(adj.remove(key), None);
        }
        assert!(matches!(adj, Adjacency::Small(_)));
        let listed: Vec<(End, usize)> = adj.iter().map(|(e, v)| (*e, *v)).collect();
        let expected: Vec<(End, usize)> = model.iter().map(|(e, v)| (*e, *v)).collect();
        assert_eq!(listed, expected);
        for (key, value) in &model {
            assert_eq!(adj.get(key), Some(value));
        }
        // The clone taken before the removals still holds all 300.
        assert_eq!(snapshot.len(), 300);
        assert_eq!(snapshot.iter().count(), 300);
        for key in &keys {
            adj.remove(key);
        }
        assert!(adj.is_empty() && matches!(adj, Adjacency::Empty));
    }

    /// Merging a sorted batch is inserting its edges one by one: from empty,
    /// into a list (replacing some values, keeping the rest), past [`SMALL`]
    /// into a map, and into a map; a clone taken before is left as it was.
    #[test]
    fn merging_a_sorted_batch_is_inserting_it_edge_by_edge() {
        let mut merged: Adjacency<usize> = Adjacency::default();
        let mut inserted: Adjacency<usize> = Adjacency::default();
        let mut value = 0;
        // Batches of ends drawn from a scrambled order, some repeating earlier ones.
        for (round, size) in [0, 3, 5, 1, 20, 40, 2, 30].into_iter().enumerate() {
            let mut batch: Vec<(End, usize)> = (0..size)
                .map(|i| {
                    value += 1;
                    (((i * 7 + round) % 3, (i * 37 + round * 11) % 90), value)
                })
                .collect();
            batch.sort_by_key(|(end, _)| *end);
            batch.dedup_by_key(|(end, _)| *end);
            let before = merged.clone();
            let before_listed: Vec<(End, usize)> = before.iter().map(|(e, v)| (*e, *v)).collect();
            for (end, v) in &batch {
                inserted.insert(*end, *v);
            }
            merged.merge(batch);
            let listed = |adj: &Adjacency<usize>| -> Vec<(End, usize)> {
                adj.iter().map(|(e, v)| (*e, *v)).collect()
            };
            assert_eq!(listed(&merged), listed(&inserted), "round {round}");
            assert_eq!(merged.len(), inserted.len());
            assert_eq!(
                matches!(merged, Adjacency::Large(_)),
                matches!(inserted, Adjacency::Large(_)),
                "round {round}"
            );
            assert_eq!(listed(&before), before_listed);
        }
        assert!(matches!(merged, Adjacency::Large(_)));
    }
}
