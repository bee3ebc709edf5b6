//! What each subcommand does, given already-parsed arguments. Kept out of
//! `main.rs` so that integration tests and other front ends can call it.

use crate::decode::DecodeConfig;
use crate::info::{self, FileInfo};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

/// Exit statuses, documented in the README.
pub mod exit {
    /// Every input was read (a cut last record is still a success).
    pub const OK: i32 = 0;
    /// Bad usage or an internal error.
    pub const USAGE: i32 = 1;
    /// At least one input could not be opened or was damaged part-way.
    pub const INPUT_DAMAGED: i32 = 2;
}

#[derive(Serialize)]
struct InfoJson<'a> {
    capsift_version: &'static str,
    files: &'a [FileInfo],
}

/// `capsift info`: summarise each capture; text for people, JSON for tools.
pub fn info(paths: &[PathBuf], json: bool, cfg: &DecodeConfig, out: &mut dyn Write) -> i32 {
    let mut status = exit::OK;
    let mut files = Vec::new();
    for p in paths {
        match info::summarize(p, cfg) {
            Ok(fi) => {
                if !fi.complete {
                    status = exit::INPUT_DAMAGED;
                }
                if !json {
                    let _ = writeln!(out, "{}", info::render_text(&fi));
                }
                files.push(fi);
            }
            Err(e) => {
                eprintln!("capsift: {}: {e}", p.display());
                status = exit::INPUT_DAMAGED;
            }
        }
    }
    if json {
        let doc = InfoJson {
            capsift_version: env!("CARGO_PKG_VERSION"),
            files: &files,
        };
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => {
                let _ = writeln!(out, "{s}");
            }
            Err(e) => {
                eprintln!("capsift: internal error writing JSON: {e}");
                return exit::USAGE;
            }
        }
    }
    status
}
