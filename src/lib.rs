//! capsift: pcap forensics for Kubernetes network incidents.
//!
//! The library is a pipeline, one folder per stage:
//! [`capture`] (read pcap/pcapng, compressed, stdin) → [`decode`] (layers
//! and tunnels, zero-copy) → summaries such as [`info`]. The binary in
//! `src/main.rs` only parses arguments and calls into here.

#![forbid(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod decode;
pub mod info;
pub mod warning;
