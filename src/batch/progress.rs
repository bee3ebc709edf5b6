//! Batch progress: indicatif bars on a terminal (overall bytes and files,
//! rate, ETA; one line per worker with its current file), plain periodic
//! lines when stderr is not a terminal, nothing with `--quiet`.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct BatchProgress {
    mode: Mode,
    files_total: u64,
    bytes_total: u64,
    files_done: AtomicU64,
    start: Instant,
    last_line: Mutex<Instant>,
}

enum Mode {
    Quiet,
    Lines,
    Bars {
        _multi: MultiProgress,
        overall: ProgressBar,
        workers: Vec<ProgressBar>,
    },
}

/// Plain progress lines at most this often.
const LINE_EVERY: Duration = Duration::from_secs(5);

impl BatchProgress {
    pub fn new(quiet: bool, files_total: u64, bytes_total: u64, jobs: usize) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(bytes_total));
            overall.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {msg} {bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let workers = (0..jobs.max(1))
                .map(|_| {
                    let b = multi.add(ProgressBar::new_spinner());
                    b.set_style(
                        ProgressStyle::with_template("  {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    b
                })
                .collect();
            Mode::Bars {
                _multi: multi,
                overall,
                workers,
            }
        } else {
            Mode::Lines
        };
        BatchProgress {
            mode,
            files_total,
            bytes_total,
            files_done: AtomicU64::new(0),
            start: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    pub fn start(&self, worker: usize, path: &Path) {
        if let Mode::Bars { workers, .. } = &self.mode {
            if let Some(b) = workers.get(worker) {
                b.set_message(format!("worker {worker}: {}", path.display()));
            }
        }
    }

    /// A capture is finished.
    pub fn done(&self, bytes_done: &AtomicU64) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.tick(bytes_done);
    }

    /// Show the bytes read so far: after each capture, and every so often
    /// while a large one is read (the bar moves, plain lines keep coming).
    pub fn tick(&self, bytes_done: &AtomicU64) {
        let files = self.files_done.load(Ordering::Relaxed);
        let bytes = bytes_done.load(Ordering::Relaxed);
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bars { overall, .. } => {
                overall.set_position(bytes);
                overall.set_message(format!("{files}/{} files", self.files_total));
            }
            Mode::Lines => {
                let now = Instant::now();
                let Ok(mut last) = self.last_line.lock() else {
                    return;
                };
                if now.duration_since(*last) < LINE_EVERY && files < self.files_total {
                    return;
                }
                *last = now;
                let secs = self.start.elapsed().as_secs_f64().max(1e-3);
                let rate = bytes as f64 / secs;
                let eta = if rate > 0.0 {
                    (self.bytes_total.saturating_sub(bytes)) as f64 / rate
                } else {
                    0.0
                };
                eprintln!(
                    "batch: {files}/{} files, {:.1}/{:.1} MB, {:.0} MB/s, ETA {:.0} s",
                    self.files_total,
                    bytes as f64 / 1e6,
                    self.bytes_total as f64 / 1e6,
                    rate / 1e6,
                    eta
                );
            }
        }
    }

    pub fn finish(&self) {
        if let Mode::Bars {
            overall, workers, ..
        } = &self.mode
        {
            for w in workers {
                w.finish_and_clear();
            }
            overall.finish_and_clear();
        }
    }
}
