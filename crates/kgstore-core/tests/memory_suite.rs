//! The shared behaviour suite, run against the memory backend.

mod memory_suite {
    kgstore_core::test_suite!(|| kgstore_core::suite::Fixture::new(kgstore_core::Store::memory()));
}

/// The suite again through the fault-injecting wrapper, which does not forward
/// the search primitives: search then runs on the scanning defaults of the
/// `ReadTxn` trait, which is what a custom backend without an index gets.
mod scanning_defaults_suite {
    kgstore_core::test_suite!(|| {
        let (backend, _plan) =
            kgstore_core::suite::faulty::FaultyBackend::new(kgstore_core::MemoryBackend::new());
        kgstore_core::suite::Fixture::new(kgstore_core::Store::new(backend))
    });
}
