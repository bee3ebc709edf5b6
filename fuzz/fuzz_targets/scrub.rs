//! `capsift scrub` with every option on a capture file made of the fuzz
//! input: it must not fail on what the reader accepts, its output must
//! read back with the same number of packets, and `--verify` must find no
//! removed payload in it.
#![no_main]
use capsift::scrub::{scrub_file, verify::verify, ScrubOptions};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("capsift-fuzz-scrub-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let input = dir.join("in.pcap");
    let output = dir.join("out.pcapng");
    let key: PathBuf = dir.join("key");
    if std::fs::write(&input, data).is_err() {
        return;
    }
    // A fixed key: a failure must replay with the same mapping.
    if !key.exists() {
        let _ = std::fs::write(&key, "07".repeat(32));
    }
    let opts = ScrubOptions {
        keep_dns: true,
        keep_tls_handshake: true,
        hash_names: true,
        anonymize: true,
        key_file: Some(key),
        ..ScrubOptions::default()
    };
    let Ok(report) = scrub_file(&input, &output, &opts) else {
        return;
    };
    assert_eq!(report.packets_in, report.packets_out);
    let v = verify(&input, &output, false, false, &opts.decode, &opts.dns_ports)
        .expect("output readable");
    assert_eq!(v.packets_original, v.packets_scrubbed, "{v:?}");
    assert!(v.ok, "{v:?}");
});
