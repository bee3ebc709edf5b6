//! The integration tests: each module runs the real `capsift` binary on real
//! captures, one module per command or concern (as ripgrep's tests/ does).
//!
//! They are one test binary, not one per file, because each binary links the
//! whole library with polars: ten binaries cost CI ten links and ~6 GB of
//! disk, one costs one (docs/PERFORMANCE.md, "Build and test footprint").
//! Run one module with `cargo test --release --test cli batch::`.

mod common;

mod analyze;
mod batch;
mod dns;
mod fuzz_regressions;
mod hostile_captures;
mod hostile_inputs;
mod info;
#[cfg(unix)]
mod interrupt;
mod overlay_health;
mod scrub;
mod tls;
