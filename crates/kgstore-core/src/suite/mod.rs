//! The shared behaviour suite: every backend runs all of it with one line.
//!
//! Each test is a public function taking a [`Fixture`] (a fresh, empty store and,
//! for persistent backends, a way to reopen it). [`test_suite!`](crate::test_suite)
//! expands them all into `#[test]`s for a constructor:
//!
//! ```ignore
//! mod memory_suite {
//!     kgstore_core::test_suite!(|| kgstore_core::suite::Fixture::new(kgstore_core::Store::memory()));
//! }
//! ```
//!
//! Tests assert behaviour, never timings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::any::Any;

use crate::{Edge, Error, ErrorKind, Node, RelationType, Store};

mod concurrency;
mod deps;
mod documents;
mod documents_model;
mod edges;
pub mod events;
pub mod faulty;
mod graph;
mod import;
mod metrics;
mod model;
mod nodes;
mod query;
mod schemas;
pub mod search;
mod txn;

pub use concurrency::*;
pub use deps::*;
pub use documents::*;
pub use documents_model::*;
pub use edges::*;
pub use events::*;
pub use graph::*;
pub use import::*;
pub use metrics::*;
pub use model::*;
pub use nodes::*;
pub use query::*;
pub use schemas::*;
pub use search::{
    search_agrees_with_reference_and_memory, search_filters_by_type_and_lists_on_empty_query,
    search_hostile_queries_are_just_text, search_pages_are_stable_under_writes,
    search_quality_beats_substring, search_refuses_bad_queries_and_cursors,
    search_sees_every_node_right_after_a_large_load, search_sees_own_writes_and_rollbacks,
    search_survives_reopen,
};
pub use txn::*;

/// A fresh, empty store for one test, with whatever must outlive it.
pub struct Fixture {
    /// The store under test.
    pub store: Store,
    reopen: Option<Box<dyn Fn() -> Store>>,
    _guard: Option<Box<dyn Any>>,
}

impl Fixture {
    /// A fixture around a store that cannot be reopened (memory).
    pub fn new(store: Store) -> Self {
        Self {
            store,
            reopen: None,
            _guard: None,
        }
    }

    /// Lets persistence tests reopen the store: `reopen` opens the same data again.
    pub fn with_reopen(mut self, reopen: impl Fn() -> Store + 'static) -> Self {
        self.reopen = Some(Box::new(reopen));
        self
    }

    /// Keeps `guard` (a temporary folder, say) alive as long as the fixture.
    pub fn keep(mut self, guard: impl Any) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }

    /// Whether the store can be reopened.
    pub fn is_persistent(&self) -> bool {
        self.reopen.is_some()
    }

    /// Closes the store and opens it again; `false` if the backend is not persistent.
    pub fn reopen(&mut self) -> bool {
        let Some(reopen) = &self.reopen else {
            return false;
        };
        // Close first: a backend may hold an exclusive lock on its files.
        self.store = Store::memory();
        self.store = reopen();
        true
    }
}

/// Runs `during` while another thread holds a write transaction of `store` open,
/// one that creates `node`; the transaction commits after `during` returns.
/// Tests of what a second writer, a reader or a check meets meanwhile use it.
pub fn while_writing<R>(store: &Store, node: Node, during: impl FnOnce() -> R) -> R {
    let writer = store.clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let holder = s.spawn(move || {
            writer.write(|tx| {
                tx.create_node(node)?;
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
        });
        held_rx.recv().unwrap();
        let answer = during();
        release_tx.send(()).unwrap();
        holder.join().unwrap().unwrap();
        answer
    })
}

/// Expands every behaviour test of the suite into a `#[test]` for a backend.
///
/// `$ctor` is an expression callable with no argument that returns a fresh
/// [`Fixture`]. Put the call in a module named for the backend so the test
/// output shows which backend ran (`memory_suite::node_create_and_get`).
///
/// A backend that does not keep one of the kinds of data says so explicitly:
/// `test_suite!(ctor, skip: documents)`, `test_suite!(ctor, skip: events)` or
/// `test_suite!(ctor, skip: documents, events)`. Each section named is replaced by
/// one test (`documents_section_skipped`, `events_section_skipped`) which checks
/// that the backend answers `Unsupported` naming the kind of data and itself, and
/// announces the skip. Without it, every test of the section runs (and fails on
/// such a backend): a section is never skipped silently.
#[macro_export]
macro_rules! test_suite {
    ($ctor:expr $(, skip: $($kind:ident),+)? $(,)?) => {
        $crate::__suite_graph!($ctor);
        $crate::__suite_section!($ctor, documents; $($($kind),+)?);
        $crate::__suite_section!($ctor, events; $($($kind),+)?);
    };
}

/// One optional section of the suite (`documents` or `events`), or its explicit
/// skip when its name is in the list after `;`.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_section {
    ($ctor:expr, documents; ) => {
        $crate::__suite_documents!($ctor);
    };
    ($ctor:expr, events; ) => {
        $crate::__events_section!($ctor);
    };
    ($ctor:expr, documents; documents $(, $rest:ident)*) => {
        $crate::__suite_tests!($ctor; documents_section_skipped);
    };
    ($ctor:expr, events; events $(, $rest:ident)*) => {
        $crate::__suite_tests!($ctor; events_section_skipped);
    };
    ($ctor:expr, $section:ident; $first:ident $(, $rest:ident)*) => {
        $crate::__suite_section!($ctor, $section; $($rest),*);
    };
}

/// The documents section of the suite.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_documents {
    ($ctor:expr) => {
        $crate::__suite_tests!($ctor;
            doc_write_and_read_round_trip, doc_metadata_is_set_by_the_store,
            doc_replace_bumps_version_keeps_created_at, doc_content_type_given_kept_and_refused,
            doc_missing_is_document_not_found, doc_exists, doc_create_only_refuses_existing,
            doc_expected_version_is_checked, doc_delete_returns_metadata,
            doc_remove_reports_whether_it_existed, doc_recreated_after_delete_starts_again,
            doc_empty_and_binary_content_round_trip, doc_forbidden_keys_are_refused_naming_the_rule,
            doc_hostile_allowed_keys_round_trip, doc_case_and_normalisation_variants_are_distinct,
            doc_key_length_limits, doc_reserved_prefix_is_refused,
            doc_tree_rule_a_document_is_not_a_folder, doc_tree_rule_a_folder_is_not_a_document,
            doc_tree_rule_holds_inside_a_batch_and_a_transaction, doc_list_by_prefix_in_byte_order,
            doc_list_prefix_is_literal, doc_list_pages_without_skips_or_repeats,
            doc_list_pages_are_stable_under_writes, doc_list_with_delimiter_gives_folders,
            doc_list_delimiter_pages_count_folders, doc_list_invalid_requests_are_refused,
            doc_batch_read_in_order_with_gaps, doc_batch_write_is_all_or_nothing,
            doc_batch_checks_hold_among_many_stored_keys, doc_reads_and_writes_are_counted_in_metrics,
            doc_streaming_write_and_read_with_bounded_pieces, doc_streaming_source_failure_writes_nothing,
            doc_import_keeps_metadata_and_checks_content, doc_graph_and_documents_commit_together,
            doc_rollback_on_err_discards_documents_and_graph, doc_rollback_on_panic,
            doc_txn_sees_its_own_writes, doc_snapshot_does_not_see_later_commits, doc_count,
            doc_many_in_one_transaction, doc_keys_are_apart_from_node_names,
            doc_concurrent_expected_version_writes_are_exact,
            doc_one_call_reads_succeed_while_another_thread_replaces_the_document,
            doc_one_call_reads_of_a_large_document_being_replaced_are_whole,
            doc_check_is_clean_with_documents,
            doc_reopen_keeps_documents, documents_model_check,
        );
    };
}

/// The graph sections of the suite.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_graph {
    ($ctor:expr) => {
        $crate::__suite_tests!($ctor;
            // nodes
            node_create_and_get, node_duplicate_is_already_exists, node_get_missing_is_not_found,
            node_invalid_names_are_refused, node_name_limits_and_unicode_are_accepted,
            node_invalid_type_is_refused, node_invalid_metadata_is_refused,
            node_update_bumps_version_keeps_created_at, node_update_with_stale_version_conflicts,
            node_update_missing_is_not_found, node_upsert_creates_then_updates,
            node_delete_removes_node_and_its_edges, node_delete_missing_is_not_found,
            node_hostile_values_round_trip, node_deep_attributes_are_refused,
            nodes_batch_create_in_any_order, nodes_batch_with_duplicate_writes_nothing,
            nodes_batch_with_invalid_item_lists_all_and_writes_nothing, node_import_keeps_metadata,
            nodes_batch_reports_the_first_taken_name_across_batches,
            node_import_of_version_zero_is_a_create, node_lookups_with_invalid_names_are_refused,
            regression_versions_beyond_i64_max_are_refused_by_every_backend,
            // dependencies
            dependency_on_missing_node_is_refused, dependency_on_itself_is_a_cycle,
            dependency_cycle_is_refused_and_named, dependency_duplicates_are_refused,
            resolve_dependencies_in_topological_order, resolve_dependencies_of_missing_node,
            resolutions_agree_with_the_reference_after_every_kind_of_write,
            dependents_transitive_and_direct, delete_with_dependents_is_refused,
            delete_with_detach_updates_dependents, delete_with_cascade_removes_dependents,
            // edges
            edge_create_and_get, edge_duplicate_is_already_exists, edge_missing_endpoint_is_refused,
            edge_invalid_values_are_refused, edge_update_and_version_conflict, edge_upsert,
            edge_delete_and_delete_missing, edge_custom_relations, edges_of_by_direction_and_relation,
            edges_of_whole_after_any_earlier_reads, edge_self_loop, edges_batch_create, edges_batch_with_missing_endpoint_writes_nothing,
            edge_import_keeps_metadata, edges_batch_reports_the_first_offender_in_order,
            // bulk imports
            bulk_import_keeps_metadata_and_checks_references,
            bulk_import_refuses_bad_input_and_writes_nothing,
            // transactions
            txn_commits_all_on_ok, txn_rolls_back_on_err, txn_rolls_back_on_panic,
            txn_sees_its_own_writes, txn_failed_operation_leaves_txn_usable,
            txn_deferred_checks_allow_any_order, txn_deferred_checks_list_every_offender,
            txn_deferred_edges_of_a_node_not_created_yet,
            txn_deferred_cycle_is_refused_at_commit, txn_deferred_delete_then_delete_dependent,
            txn_nested_write_on_same_thread_is_refused, snapshot_does_not_see_later_commits,
            one_read_agrees_with_the_default_path, one_read_store_calls_agree_with_a_read_transaction,
            one_read_sees_each_commit_and_no_open_write,
            // queries
            list_nodes_by_type, list_nodes_by_name_prefix, list_nodes_by_tags,
            list_nodes_by_status, list_nodes_by_attribute, list_nodes_updated_since,
            list_nodes_by_text, list_nodes_with_combined_filters, list_nodes_pages_without_skips_or_repeats,
            list_nodes_pagination_is_stable_under_inserts, list_invalid_page_requests_are_refused,
            list_edges_by_filters, list_edges_pages_without_skips_or_repeats, list_invalid_filters_are_refused,
            whole_scans_list_what_pages_list,
            json_scans_encode_what_scans_give, json_edge_scans_come_in_key_order,
            json_edge_scans_write_rare_rich_edges_among_plain_ones,
            // graph algorithms
            traverse_reports_min_depths, traverse_respects_direction_relations_and_bidirectional,
            traverse_invalid_and_missing, shortest_path_fewest_hops, shortest_path_by_weight,
            shortest_path_edge_cases, stats_count_by_type,
            stats_follow_type_changes_deletions_and_rollbacks, check_finds_healthy_store_healthy,
            overrides_agree_with_reference_algorithms,
            neighbours_and_reach_by_direction_relation_and_bidirectional,
            neighbours_and_reach_agree_with_reference_algorithms,
            reach_and_traversal_agree_as_bidirectional_edges_come_and_go,
            // schemas
            schema_validates_node_attributes_with_pointers, schema_refused_when_stored_data_violates,
            schema_for_relation_validates_edges, schema_invalid_documents_are_refused,
            schema_list_get_remove, schema_set_in_rolled_back_txn_is_gone,
            schema_applies_on_update_and_type_change,
            // ranked full-text search
            search_quality_beats_substring, search_filters_by_type_and_lists_on_empty_query,
            search_refuses_bad_queries_and_cursors, search_hostile_queries_are_just_text,
            search_pages_are_stable_under_writes,
            search_sees_own_writes_and_rollbacks, search_survives_reopen,
            search_sees_every_node_right_after_a_large_load,
            search_agrees_with_reference_and_memory,
            // concurrency and persistence
            concurrent_optimistic_increments_are_exact, readers_see_consistent_snapshots,
            reopen_keeps_everything,
            // metrics
            metrics_count_reads_writes_commits_and_failures_by_kind,
            metrics_turned_off_count_only_failures, metrics_count_a_lock_wait_between_two_writers,
            // the reference model
            model_check,
        );
    };
}

/// The events section of the suite.
#[doc(hidden)]
#[macro_export]
macro_rules! __events_section {
    ($ctor:expr) => {
        $crate::__suite_tests!($ctor;
            // appends
            events_append_and_read_stream, events_expected_any_appends_whatever_the_version,
            events_expected_no_stream_accepts_only_a_new_stream,
            events_expected_stream_exists_refuses_a_new_stream,
            events_expected_exact_checks_the_version, events_multi_stream_append_is_atomic,
            events_same_stream_twice_in_one_append_is_refused,
            events_idempotent_retry_returns_original_positions,
            events_idempotent_retry_survives_reopen, events_same_id_other_payload_is_conflict,
            events_partial_retry_is_conflict, events_duplicate_ids_in_one_append_are_refused,
            events_known_id_late_in_a_long_append_writes_none_of_it,
            events_retry_wins_over_a_schema_set_since,
            events_generated_ids_are_unique, events_borrowed_appends_leave_the_events_with_the_caller,
            events_invalid_input_is_refused_listing_every_violation,
            events_oversize_events_are_refused_and_nothing_appended,
            events_too_many_events_in_one_append_are_refused, events_deep_data_is_refused,
            events_hostile_stream_names_round_trip, events_metadata_round_trips,
            events_append_in_graph_transaction_commits_together,
            events_rolled_back_appends_leave_nothing_and_no_gap, events_panic_rolls_back_appends,
            events_transaction_sees_its_own_appends,
            // reads, the global order, subscriptions
            events_read_all_forwards_and_backwards, events_read_pages_without_skips_or_repeats,
            events_read_stream_by_version_both_ways, events_read_filtered_by_type_and_stream_prefix,
            events_read_invalid_options_are_refused,
            events_lookups_by_position_and_id_and_stream_listing,
            events_no_skip_while_a_transaction_holds_a_position,
            events_concurrent_appenders_make_a_contiguous_log,
            events_snapshot_does_not_see_later_appends, events_subscription_catches_up_then_waits,
            events_subscription_resumes_from_a_checkpoint,
            events_subscription_filters_streams_and_types,
            // consumer groups, dead letters, batches
            events_group_create_list_status_delete, events_group_unknown_and_invalid_are_refused,
            events_group_delivers_each_event_once_and_acks,
            events_group_checkpoint_moves_only_past_settled_events,
            events_group_start_end_and_position, events_group_filters_streams_and_types,
            events_group_nack_retries_after_the_backoff,
            events_group_max_deliveries_dead_letters_with_the_story, events_group_park_and_skip,
            events_group_expired_lease_redelivers_and_fences_the_late_ack,
            events_group_expired_leases_count_toward_max_deliveries,
            events_group_renewal_extends_the_lease,
            events_group_tokens_of_superseded_attempts_do_nothing,
            events_group_max_in_flight_limits_deliveries, events_groups_are_independent,
            events_group_poll_wait_wakes_on_append, events_dlq_inspect_and_purge,
            events_dlq_replay_in_chunks_never_moves_the_checkpoint,
            events_dlq_failed_replay_returns_to_the_queue,
            events_group_counters_are_exact_after_reopen, events_batch_status_per_group,
            events_batch_can_be_waited_for,
            events_batch_removed_before_delivery_is_settled_once_the_group_passes_it,
            events_group_under_fire_with_threads,
            // schemas
            events_schema_validates_appends_with_pointers, events_schema_invalid_documents_are_refused,
            events_schema_same_version_again_changes_nothing,
            events_schema_backward_accepts_widening_refuses_narrowing,
            events_schema_forward_accepts_narrowing_refuses_widening,
            events_schema_full_accepts_neutral_refuses_either,
            events_schema_backward_transitive_checks_every_version,
            events_schema_forward_transitive_checks_every_version,
            events_schema_full_transitive_checks_every_version, events_schema_none_accepts_anything,
            events_schema_open_content_model_rules,
            // retention
            events_retention_max_count_keeps_the_newest_and_tells_readers,
            events_truncate_before_removes_older_versions, events_retention_max_age_hides_then_removes,
            events_deleted_streams_are_tombstones, events_group_behind_retention_is_told,
            events_subscription_behind_retention_is_told,
            events_retries_of_removed_events_stay_idempotent,
            events_delivery_removed_before_redelivery_is_dead_lettered,
            // the change feed
            events_change_feed_is_off_by_default, events_change_feed_records_every_change_with_versions,
            events_change_feed_leaves_nothing_for_rolled_back_work,
            events_change_feed_sees_cascades_and_detaches,
            events_change_feed_shares_the_commit_with_application_events,
            // with documents
            events_documents_and_graph_commit_together_or_not_at_all,
            events_change_feed_records_document_writes_and_deletes,
            events_change_feed_records_documents_in_their_commit_and_not_rolled_back,
            // persistence and the reference model
            events_reopen_keeps_the_event_store, events_agree_with_the_memory_backend,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    ($ctor:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let fixture: $crate::suite::Fixture = ($ctor)();
                $crate::suite::$name(fixture);
            }
        )*
    };
}

// ----- helpers shared by the suite -----

/// A node of type `thing`.
pub fn thing(name: &str) -> Node {
    Node::new(name, "thing").unwrap()
}

/// A node of type `thing` depending on `deps`.
pub fn thing_with_deps(name: &str, deps: &[&str]) -> Node {
    deps.iter().fold(thing(name), |n, d| n.with_dependency(*d))
}

/// An edge `from -[rel]-> to`.
pub fn edge(from: &str, rel: RelationType, to: &str) -> Edge {
    Edge::new(from, rel, to).unwrap()
}

/// Creates `things` nodes, in one transaction.
pub fn things(store: &Store, names: &[&str]) {
    store.create_nodes(names.iter().map(|n| thing(n))).unwrap();
}

/// The error's kind, failing the test on `Ok`.
pub fn kind_of<T: std::fmt::Debug>(outcome: Result<T, Error>) -> ErrorKind {
    match outcome {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(e) => e.kind(),
    }
}

/// The names of some nodes.
pub fn names_of(nodes: &[Node]) -> Vec<String> {
    nodes.iter().map(|n| n.name.clone()).collect()
}

/// A small attributes object.
pub fn attrs(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// Everything in a store, for comparisons: nodes, edges, schemas, in key order.
pub fn dump(
    store: &Store,
) -> (
    Vec<Node>,
    Vec<Edge>,
    Vec<(crate::SchemaTarget, serde_json::Value)>,
) {
    use crate::{EdgeFilter, GraphRead, NodeFilter, PageRequest};
    let read = store.read().unwrap();
    let mut nodes = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let got = read.list_nodes(&NodeFilter::default(), &page).unwrap();
        nodes.extend(got.items);
        match got.next_cursor {
            Some(c) => page = page.after(Some(c)),
            None => break,
        }
    }
    let mut edges = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let got = read.list_edges(&EdgeFilter::default(), &page).unwrap();
        edges.extend(got.items);
        match got.next_cursor {
            Some(c) => page = page.after(Some(c)),
            None => break,
        }
    }
    (nodes, edges, read.list_schemas().unwrap())
}
