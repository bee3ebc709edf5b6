//! DNS messages: the parser (hickory-proto and capsift's fallback reader)
//! and the scrubber's in-place rewriting (names hashed, addresses mapped),
//! whose output must stay the same length and walkable.
#![no_main]
use capsift::scrub::anonymize::{AddressMapper, NameHasher, ScrubKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = capsift::dns::message::parse(data);
    let _ = capsift::dns::message::fallback(data);
    let _ = capsift::dns::message::read_name(data, 12);
    let key = ScrubKey::from_bytes([7; 32]);
    let mut names = NameHasher::new(&key);
    let mut addrs = AddressMapper::new(&key, &[]);
    let mut msg = data.to_vec();
    if capsift::scrub::dns::rewrite(&mut msg, Some(&mut names), Some(&mut addrs)).is_ok() {
        assert_eq!(msg.len(), data.len());
        // Only names and addresses change: the header (counts) never does.
        assert_eq!(msg[..12], data[..12]);
        // A rewritten message can be walked again (hashing is idempotent in shape).
        let mut again = msg.clone();
        assert!(capsift::scrub::dns::rewrite(&mut again, None, None).is_ok());
    }
});
