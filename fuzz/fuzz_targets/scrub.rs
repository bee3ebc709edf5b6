//! `capsift scrub` with every option on a capture file made of the fuzz
//! input: as many packets out as in, and `--verify` finds no removed
//! payload (`capsift::scrub::selfcheck::scrub_everything`, replayed on
//! every past failure by tests/cli/fuzz_regressions.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("capsift-fuzz-scrub-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let (input, output, key) = (dir.join("in.pcap"), dir.join("out.pcapng"), dir.join("key"));
    if std::fs::write(&input, data).is_err() {
        return;
    }
    // A fixed key: a failure must replay with the same mapping.
    if !key.exists() && std::fs::write(&key, "07".repeat(32)).is_err() {
        return;
    }
    if let Err(e) = capsift::scrub::selfcheck::scrub_everything(&input, &output, &key) {
        panic!("{e}");
    }
});
