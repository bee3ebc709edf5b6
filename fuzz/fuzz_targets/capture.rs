//! The capture reader (pcap, pcapng, gzip/zstd) and the whole analysis
//! behind it (decode, flows, detectors, DNS, TLS) on arbitrary file bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = capsift::analyze::AnalyzeOptions::default();
    let Some((summary, findings)) = capsift::analyze::analyze_bytes(data.to_vec(), &opts) else {
        return;
    };
    // The report renders whatever was found.
    let _ = capsift::report::Report::new(vec![summary], findings).to_json();
});
