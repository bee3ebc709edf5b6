//! DNS messages: the parser (hickory-proto and capsift's fallback reader)
//! and the scrubber's in-place rewriting (names hashed, addresses mapped),
//! whose output must keep its length and header and read the same again
//! (`capsift::scrub::selfcheck::dns_message`, replayed on every past
//! failure by tests/cli/fuzz_regressions.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = capsift::scrub::selfcheck::dns_message(data) {
        panic!("{e}");
    }
});
