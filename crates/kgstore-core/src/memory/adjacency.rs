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

    /// Every edge as one slice, sorted by [`End`] (empty for none); `None` for
    /// a node with many edges (a map).
    pub(super) fn as_slice(&self) -> Option<&[(End, T)]> {
        match self {
            Self::Empty => Some(&[]),
            Self::Small(list) => Some(list),
            Self::Large(_) => None,
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

    /// Adds or replaces the edges of `new` (sorted by [`End`]; of repeats of
    /// one end, the later is kept), as [`Adjacency::insert`] one after the
    /// other would, but copying a list once for all of them: inserting `k`
    /// edges one by one into a list makes `k` copies of growing size and frees
    /// all but the last, and a load that does that for every node leaves the
    /// allocator tens of thousands of scattered free blocks to sort on its next
    /// requests. A list shared with a clone is copied, never changed in place.
    pub(super) fn merge(&mut self, mut new: Vec<(End, T)>) {
        if new.is_empty() {
            return;
        }
        let old: &[(End, T)] = match self {
            // Into nothing: the batch itself, without another list to free (a
            // load merges into empty adjacencies for almost every node, and every
            // list freed there is one more block for glibc to sort at the next
            // commits: measured, 10x slower single commits after a 100k load).
            Self::Empty => {
                // `dedup_by` hands (later, kept earlier): the kept one takes the
                // later value.
                new.dedup_by(|later, kept| {
                    let repeat = later.0 == kept.0;
                    if repeat {
                        std::mem::swap(&mut later.1, &mut kept.1);
                    }
                    repeat
                });
                *self = Self::from_sorted(new);
                return;
            }
            Self::Large(map) => {
                for (end, value) in new {
                    map.insert(end, value);
                }
                return;
            }
            Self::Small(list) => list,
        };
        let mut merged: Vec<(End, T)> = Vec::with_capacity(old.len() + new.len());
        let mut old = old.iter().peekable();
        for (end, value) in new {
            while let Some(kept) = old.next_if(|(e, _)| *e < end) {
                merged.push(kept.clone());
            }
            // Replaced by the new value.
            old.next_if(|(e, _)| *e == end);
            match merged.last_mut() {
                // A repeat within `new`: the later value wins.
                Some((last, kept)) if *last == end => *kept = value,
                _ => merged.push((end, value)),
            }
        }
        merged.extend(old.cloned());
        *self = Self::from_sorted(merged);
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

    /// An adjacency's edges, in order.
    fn listed(adj: &Adjacency<u32>) -> Vec<(End, u32)> {
        adj.iter().map(|(e, v)| (*e, *v)).collect()
    }

    /// What the tests do to a few adjacencies (slots), some sharing their
    /// contents with others through clones.
    #[derive(Clone, Debug)]
    enum Step {
        /// Merges a batch, sorted by end, repeats of an end kept in the order
        /// drawn (the later one must win).
        Merge(usize, Vec<(End, u32)>),
        /// Clones slot `.0` into slot `.1` (the two share their list or map).
        Clone(usize, usize),
        /// Removes an end from a slot.
        Remove(usize, End),
    }

    const SLOTS: usize = 3;

    fn end() -> impl proptest::strategy::Strategy<Value = End> {
        // Few relations and ends, so that batches repeat ends and meet old ones.
        (0..3usize, 0..120usize)
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (
                0..SLOTS,
                // Up to past SMALL in one batch; empty batches too.
                proptest::collection::vec((end(), any::<u32>()), 0..90)
            )
                .prop_map(|(slot, mut batch)| {
                    batch.sort_by_key(|(end, _)| *end); // stable: repeats keep their order
                    Step::Merge(slot, batch)
                }),
            1 => (0..SLOTS, 0..SLOTS).prop_map(|(from, to)| Step::Clone(from, to)),
            2 => (0..SLOTS, end()).prop_map(|(slot, end)| Step::Remove(slot, end)),
        ]
    }

    proptest::proptest! {
        /// Merging a sorted batch gives what inserting its edges one by one
        /// gives (the same edges, values and representation) and what a map
        /// given them in order holds, from empty, into lists, past [`SMALL`]
        /// into maps and into maps; repeats within a batch and ends already
        /// there take the later value; and a merge into a list or map shared
        /// with a clone changes the merged one only, the clone keeping what it
        /// held (every slot is checked after every step).
        #[test]
        fn merging_is_inserting_edge_by_edge(steps in proptest::collection::vec(step(), 1..40)) {
            let mut merged: Vec<Adjacency<u32>> = vec![Adjacency::default(); SLOTS];
            let mut inserted: Vec<Adjacency<u32>> = vec![Adjacency::default(); SLOTS];
            let mut model: Vec<std::collections::BTreeMap<End, u32>> = vec![Default::default(); SLOTS];
            for (n, step) in steps.into_iter().enumerate() {
                match step {
                    Step::Merge(slot, batch) => {
                        for (end, value) in &batch {
                            inserted[slot].insert(*end, *value);
                            model[slot].insert(*end, *value);
                        }
                        merged[slot].merge(batch);
                    }
                    Step::Clone(from, to) => {
                        merged[to] = merged[from].clone();
                        inserted[to] = inserted[from].clone();
                        model[to] = model[from].clone();
                    }
                    Step::Remove(slot, end) => {
                        let expected = model[slot].remove(&end);
                        proptest::prop_assert_eq!(inserted[slot].remove(&end), expected);
                        proptest::prop_assert_eq!(merged[slot].remove(&end), expected);
                    }
                }
                for slot in 0..SLOTS {
                    let expected: Vec<(End, u32)> =
                        model[slot].iter().map(|(e, v)| (*e, *v)).collect();
                    proptest::prop_assert_eq!(&listed(&merged[slot]), &expected, "step {} slot {}", n, slot);
                    proptest::prop_assert_eq!(&listed(&inserted[slot]), &expected, "step {} slot {}", n, slot);
                    proptest::prop_assert_eq!(merged[slot].len(), expected.len());
                    proptest::prop_assert_eq!(
                        std::mem::discriminant(&merged[slot]),
                        std::mem::discriminant(&inserted[slot]),
                        "step {} slot {}", n, slot
                    );
                    for (end, value) in &model[slot] {
                        proptest::prop_assert_eq!(merged[slot].get(end), Some(value));
                    }
                }
            }
        }
    }

    /// A merge into a list and into a map that a clone shares: the merged one
    /// holds the new values and the added ends, the clone exactly what both
    /// held before.
    #[test]
    fn a_merge_into_a_shared_list_or_map_leaves_the_clone_as_it_was() {
        for size in [5usize, 40, 100] {
            let mut adj: Adjacency<u32> = Adjacency::default();
            for i in 0..size {
                adj.insert((0, 2 * i), 1);
            }
            assert_eq!(
                matches!(adj, Adjacency::Large(_)),
                size > SMALL,
                "size {size}"
            );
            let clone = adj.clone();
            let before = listed(&clone);
            // Every old end replaced (value 2), and as many odd ends added (3).
            let batch: Vec<(End, u32)> = (0..2 * size)
                .map(|i| ((0, i), if i % 2 == 0 { 2 } else { 3 }))
                .collect();
            adj.merge(batch.clone());
            assert_eq!(listed(&adj), batch, "size {size}");
            assert_eq!(listed(&clone), before, "size {size}");
            assert!(listed(&clone).iter().all(|(_, v)| *v == 1));
            assert_eq!(clone.len(), size);
        }
    }
}
