//! SIGINT (Ctrl-C), SIGTERM (`kubectl delete`, a pod evicted or past its
//! `activeDeadlineSeconds`: the kubelet sends SIGTERM before SIGKILL) and
//! SIGHUP (the terminal closed) end capsift after removing its temporary
//! files: an interrupted run leaves neither an output that looks whole
//! (outputs are renamed only when complete) nor hidden `.capsift-tmp-`
//! files. capsift then dies of the signal itself, so a shell sees what it
//! expects (status 130, 143 or 129; bash stops a script's loop on Ctrl-C
//! only when the child was killed by SIGINT).

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::Write;

/// Handle the three signals on a thread of their own, except those the
/// process inherited as ignored (`nohup` ignores SIGHUP; a script's
/// background job ignores SIGINT): those stay ignored (on Linux, where
/// /proc tells which they are). Where the handler
/// cannot be set up, the signals keep their default action, and the next
/// run into the same directory removes the files left behind
/// (`atomic_file::TempPath::create`).
pub fn install() -> std::io::Result<()> {
    let ignored = inherited_ignored();
    let bit = |s: i32| {
        u32::try_from(s - 1)
            .ok()
            .and_then(|n| 1u64.checked_shl(n))
            .unwrap_or(0)
    };
    let wanted: Vec<i32> = [SIGINT, SIGTERM, SIGHUP]
        .into_iter()
        .filter(|&s| ignored & bit(s) == 0)
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    // The signals are taken over inside the thread, and `install` returns
    // once they are: if the thread could not start, they keep their
    // default action (a `Signals` dropped for want of a thread would leave
    // them caught by nobody, that is ignored).
    let (taken, done) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("capsift-signals".into())
        .spawn(move || match Signals::new(&wanted) {
            Ok(mut signals) => {
                let _ = taken.send(Ok(()));
                if let Some(signal) = signals.forever().next() {
                    end(signal);
                }
            }
            Err(e) => {
                let _ = taken.send(Err(e));
            }
        })?;
    done.recv().unwrap_or(Ok(()))
}

/// Remove the unfinished outputs, say so, and end by `signal`. Nothing
/// here may panic: a panic would end this thread, and with it the only
/// handler of the signals, leaving a process only SIGKILL stops.
fn end(signal: i32) -> ! {
    // Held until the end: no temporary file is created or renamed after
    // these are removed.
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
    // Writing to stderr can block (a pipe nobody reads): end anyway after
    // a moment.
    let _ = std::thread::Builder::new().spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(2));
        die(signal)
    });
    // Not eprintln!, which panics when stderr is gone (SIGHUP from a
    // closed terminal).
    let _ = writeln!(
        std::io::stderr(),
        "capsift: interrupted by {name}: removed {removed} unfinished output file(s); \
         outputs completed before the signal are in place"
    );
    die(signal)
}

/// End by `signal`'s default action. As PID 1 (a container's entry point)
/// a process cannot be ended by its own signal that way; it exits with the
/// status a shell would show instead.
fn die(signal: i32) -> ! {
    if std::process::id() != 1 {
        let _ = signal_hook::low_level::emulate_default_handler(signal);
    }
    std::process::exit(128 + signal)
}

/// The signals this process started with set to be ignored, as the
/// `SigIgn` mask of /proc/self/status (bit n-1 for signal n); none where
/// that cannot be read.
fn inherited_ignored() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}
