//! libFuzzer target over `kgstore_reliability::fuzz::mcp_import`: a finding is a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(finding) = kgstore_reliability::fuzz::mcp_import(data) {
        panic!("{finding}");
    }
});
