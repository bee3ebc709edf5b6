//! The capture reader (pcap, pcapng, gzip/zstd) and the whole analysis
//! behind it (decode, flows, detectors, DNS, TLS) on arbitrary file bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) =
        capsift::capture::CaptureReader::from_reader(Box::new(std::io::Cursor::new(data.to_vec())))
    else {
        return;
    };
    let opts = capsift::analyze::AnalyzeOptions::default();
    let bar = capsift::analyze::progress::Progress::new(false, None, "");
    let (summary, findings) = capsift::analyze::analyze_reader(
        reader,
        "fuzz",
        0,
        &opts,
        &mut Default::default(),
        None,
        &bar,
    );
    // The report renders whatever was found.
    let _ = capsift::report::Report::new(vec![summary], findings).to_json();
});
