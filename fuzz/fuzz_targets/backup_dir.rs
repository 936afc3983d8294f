//! libFuzzer target over `kgstore_reliability::fuzz::backup_dir`: a finding is a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(finding) = kgstore_reliability::fuzz::backup_dir(data) {
        panic!("{finding}");
    }
});
