//! Seeds a cargo-fuzz corpus with the stable driver's structured inputs:
//!
//! ```text
//! cargo run -p kgstore-reliability --example fuzz_corpus -- fuzz/corpus 200
//! ```
//!
//! writes 200 inputs per target into `fuzz/corpus/TARGET/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kgstore_reliability::fuzz::{TARGETS, generate};
use kgstore_reliability::rng::Rng;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().map_or("fuzz/corpus", String::as_str));
    let count: u64 = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(200);
    for (index, (target, _)) in TARGETS.iter().enumerate() {
        let folder = dir.join(target);
        std::fs::create_dir_all(&folder).expect("cannot make the corpus folder");
        let mut rng = Rng::derive(0x00c0_ffee, index as u64);
        for case in 0..count {
            let input = generate::input_for(target, &mut rng);
            std::fs::write(folder.join(format!("seed-{case}")), input).expect("cannot write");
        }
        println!("{}: {count} inputs", folder.display());
    }
}
