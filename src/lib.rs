//! capsift: pcap forensics for Kubernetes network incidents.
//!
//! The library is a pipeline, one folder per stage:
//! [`capture`] (read pcap/pcapng, compressed, stdin) → [`decode`] (layers
//! and tunnels, zero-copy) → [`flow`] (tunnel-aware flow table, copies at
//! several capture points, TCP analysis) → [`detect`] (one module per
//! detector) → [`report`] (findings as text, Markdown, JSON; tables).
//! [`analyze`] runs that pipeline; [`info`] is the capinfos-like summary;
//! [`scrub`] writes captures safe to share; [`batch`] runs many at once.
//! The binary in `src/main.rs` only parses arguments and calls [`cli`].

#![forbid(unsafe_code)]
// Capture bytes must never reach a panic: no unwrap/expect outside tests
// (docs/hardening.md). Indexing is left to the views' checked construction
// (smoltcp style) and arithmetic to the fuzzers, which run with overflow
// checks on.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod analyze;
pub mod atomic_file;
#[cfg(feature = "tables")]
pub mod batch;
pub mod capture;
pub mod cli;
pub mod decode;
pub mod detect;
pub mod dns;
pub mod flow;
pub mod info;
#[cfg(unix)]
pub mod interrupt;
pub mod report;
pub mod scrub;
pub mod tls;
pub mod warning;
