//! SIGINT (Ctrl-C), SIGTERM (`kubectl delete`, a pod evicted or past its
//! `activeDeadlineSeconds`, whose kubelet sends SIGTERM before SIGKILL) and
//! SIGHUP (the terminal closed) end capsift after removing its temporary
//! files: an interrupted run leaves neither an output that looks whole
//! (they are renamed only when complete) nor hidden `.capsift-tmp-` files.
//! The exit status is the shell's for a signal, 128 + its number.

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Handle the three signals on a thread of their own. Where that cannot
/// be set up, the signals keep their default action, and the next run
/// into the same directory removes the files left behind
/// (`atomic_file::TempPath::create`).
pub fn install() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("capsift-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Held until exit: no temporary file appears after these
                // are removed.
                let live = crate::atomic_file::lock_live();
                let removed = live
                    .iter()
                    .filter(|p| std::fs::remove_file(p).is_ok())
                    .count();
                let name = match signal {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                eprintln!(
                    "capsift: interrupted by {name}: removed {removed} unfinished output file(s); \
                     outputs completed before the signal are in place"
                );
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}
