//! The shared behaviour suite, run against the memory backend.

mod memory_suite {
    kgstore_core::test_suite!(|| kgstore_core::suite::Fixture::new(kgstore_core::Store::memory()));
}
