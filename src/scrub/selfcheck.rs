//! What the scrubber promises, as checks shared by the fuzz targets
//! (`fuzz/fuzz_targets/dns.rs`, `scrub.rs`) and the tests that replay
//! every input they ever failed on (`tests/cli/fuzz_regressions.rs`), so both
//! run exactly the same property. Each returns what was broken.

use super::anonymize::{AddressMapper, NameHasher, ScrubKey};
use super::{scrub_file, verify::verify, ScrubOptions};
use std::path::Path;

/// The DNS readers take any message; a message the scrubber rewrites (names
/// hashed, addresses mapped) keeps its length and header and reads the same
/// way again.
pub fn dns_message(data: &[u8]) -> Result<(), String> {
    let _ = crate::dns::message::parse(data);
    let _ = crate::dns::message::fallback(data);
    let _ = crate::dns::message::read_name(data, 12);
    let key = ScrubKey::from_bytes([7; 32]);
    let mut names = NameHasher::new(&key);
    let mut addrs = AddressMapper::new(&key, &[]);
    let mut msg = data.to_vec();
    if super::dns::rewrite(&mut msg, Some(&mut names), Some(&mut addrs)).is_err() {
        return Ok(()); // refused: the caller removes the message
    }
    if msg.len() != data.len() {
        return Err("the rewritten message changed length".into());
    }
    if msg.get(..12) != data.get(..12) {
        return Err("the rewritten message changed its header".into());
    }
    if super::dns::rewrite(&mut msg, None, None).is_err() {
        return Err("the rewritten message no longer reads".into());
    }
    Ok(())
}

/// `scrub` with every option writes as many packets as it read, and
/// `--verify` finds no removed payload in the output. An input the scrubber
/// refuses (not a capture) is not a failure.
pub fn scrub_everything(input: &Path, output: &Path, key_file: &Path) -> Result<(), String> {
    let opts = ScrubOptions {
        keep_dns: true,
        keep_tls_handshake: true,
        hash_names: true,
        anonymize: true,
        key_file: Some(key_file.to_path_buf()),
        ..ScrubOptions::default()
    };
    let Ok(report) = scrub_file(input, output, &opts) else {
        return Ok(());
    };
    if report.packets_in != report.packets_out {
        return Err(format!(
            "{} packets in, {} out",
            report.packets_in, report.packets_out
        ));
    }
    let v = verify(input, output, false, false, &opts.decode, &opts.dns_ports)
        .map_err(|e| format!("the output does not read back: {e}"))?;
    if !v.ok {
        return Err(format!("verify failed: {v:?}"));
    }
    Ok(())
}
