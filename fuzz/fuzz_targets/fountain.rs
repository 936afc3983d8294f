//! libFuzzer target over `kgstore_reliability::fuzz::fountain`: a finding is a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(finding) = kgstore_reliability::fuzz::fountain(data) {
        panic!("{finding}");
    }
});
