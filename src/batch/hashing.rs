//! The SHA-256 of each capture (`captures.sha256`), computed as the capture
//! is read, and lent to idle workers.
//!
//! Hashing is about a third of a worker's time on a capture (SHA-256 runs
//! at ~1.6 GB/s here, the analysis at ~0.8 GB/s). A batch ends when its
//! last capture does: once the queue is empty, workers that have nothing
//! left to analyse would wait for the one still reading a big capture. So
//! an idle worker offers itself to the [`HashPool`], and a capture still
//! being read hands its hash over: the reader then only copies each chunk
//! it reads to the helper, which hashes it on its own core. The digest is
//! the same (SHA-256 is one sequential stream; the context moves, the
//! order of the bytes does not change).
//!
//! The hash always covers the whole file: when the analysis stops early
//! (a damaged capture), the rest is read and hashed afterwards.

use ring::digest::{Context, Digest, SHA256};
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// Chunks smaller than this are hashed in place (lending costs a copy).
const MIN_LEND_CHUNK: usize = 64 * 1024;
/// Chunks in flight to a helper (each at most one read, ~1 MiB).
const CHUNKS_IN_FLIGHT: usize = 4;

/// A hash handed over to a helper: the context so far, then the chunks.
struct HashJob {
    ctx: Context,
    chunks: mpsc::Receiver<Vec<u8>>,
    /// Emptied chunk buffers go back to the reader to be refilled.
    recycle: mpsc::SyncSender<Vec<u8>>,
    done: mpsc::SyncSender<Digest>,
}

/// Workers with nothing left to analyse, lending their core to hashing.
pub struct HashPool {
    workers: usize,
    /// Helpers waiting for a job and not yet claimed.
    idle: AtomicUsize,
    /// Workers still analysing a capture (they may still lend a hash).
    reading: AtomicUsize,
    /// A job, or `None`: every capture has been read, stop helping.
    jobs_tx: mpsc::Sender<Option<HashJob>>,
    jobs_rx: Mutex<mpsc::Receiver<Option<HashJob>>>,
}

impl HashPool {
    /// A pool for `workers` workers, all of them reading at first.
    pub fn new(workers: usize) -> HashPool {
        let (jobs_tx, jobs_rx) = mpsc::channel();
        HashPool {
            workers,
            idle: AtomicUsize::new(0),
            reading: AtomicUsize::new(workers),
            jobs_tx,
            jobs_rx: Mutex::new(jobs_rx),
        }
    }

    /// A worker's place among the readers. Dropped without
    /// [`ReaderSlot::help_until_done`] (a worker that panicked, a thread that
    /// failed to start), it still counts itself out, so the other workers
    /// are not left waiting for it.
    pub fn reader(&self) -> ReaderSlot<'_> {
        ReaderSlot {
            pool: self,
            done: false,
        }
    }

    /// One reader fewer; the last one tells the helpers to stop. Returns
    /// whether this was the last.
    fn stop_reading(&self) -> bool {
        if self.reading.fetch_sub(1, Ordering::SeqCst) != 1 {
            return false;
        }
        // Every other worker is helping or gone; extra `None`s are harmless.
        for _ in 1..self.workers {
            let _ = self.jobs_tx.send(None);
        }
        true
    }

    fn help(&self) {
        self.idle.fetch_add(1, Ordering::SeqCst);
        loop {
            let job = match self.jobs_rx.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            match job {
                Ok(Some(job)) => {
                    run(job);
                    self.idle.fetch_add(1, Ordering::SeqCst);
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Claim an idle helper, if there is one.
    fn claim(&self) -> bool {
        self.idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn unclaim(&self) {
        self.idle.fetch_add(1, Ordering::SeqCst);
    }
}

/// See [`HashPool::reader`].
pub struct ReaderSlot<'a> {
    pool: &'a HashPool,
    done: bool,
}

impl ReaderSlot<'_> {
    /// Called by a worker whose queue is empty: hash for the others until
    /// no worker is reading any more.
    pub fn help_until_done(mut self) {
        self.done = true;
        if !self.pool.stop_reading() {
            self.pool.help();
        }
    }
}

impl Drop for ReaderSlot<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.pool.stop_reading();
        }
    }
}

fn run(job: HashJob) {
    let mut ctx = job.ctx;
    for chunk in job.chunks {
        ctx.update(&chunk);
        let _ = job.recycle.try_send(chunk);
    }
    let _ = job.done.send(ctx.finish());
}

enum State {
    Inline(Context),
    Lent {
        chunks: mpsc::SyncSender<Vec<u8>>,
        recycle: mpsc::Receiver<Vec<u8>>,
        done: mpsc::Receiver<Digest>,
    },
    /// A helper went away mid-stream (cannot happen short of a bug): no
    /// digest rather than a wrong one.
    Lost,
}

/// The SHA-256 of one file, fed as it is read, lent to a helper when the
/// pool has one.
pub struct FileHash {
    state: State,
    bytes: u64,
    pool: Option<Arc<HashPool>>,
}

impl FileHash {
    pub fn new(pool: Option<Arc<HashPool>>) -> FileHash {
        FileHash {
            state: State::Inline(Context::new(&SHA256)),
            bytes: 0,
            pool,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        if data.len() >= MIN_LEND_CHUNK && matches!(self.state, State::Inline(_)) {
            self.lend();
        }
        match &mut self.state {
            State::Inline(ctx) => ctx.update(data),
            State::Lent {
                chunks, recycle, ..
            } => {
                let mut buf = recycle.try_recv().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(data);
                if chunks.send(buf).is_err() {
                    self.state = State::Lost;
                }
            }
            State::Lost => {}
        }
    }

    /// Hand the context to an idle helper, if the pool has one.
    fn lend(&mut self) {
        let Some(pool) = self.pool.as_ref() else {
            return;
        };
        if !pool.claim() {
            return;
        }
        let State::Inline(ctx) = std::mem::replace(&mut self.state, State::Lost) else {
            pool.unclaim();
            return;
        };
        let (chunks_tx, chunks_rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let (recycle_tx, recycle_rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT + 1);
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let job = HashJob {
            ctx,
            chunks: chunks_rx,
            recycle: recycle_tx,
            done: done_tx,
        };
        match pool.jobs_tx.send(Some(job)) {
            Ok(()) => {
                self.state = State::Lent {
                    chunks: chunks_tx,
                    recycle: recycle_rx,
                    done: done_rx,
                }
            }
            // Not reachable while the pool lives; keep hashing here.
            Err(mpsc::SendError(job)) => {
                if let Some(job) = job {
                    self.state = State::Inline(job.ctx);
                }
                pool.unclaim();
            }
        }
    }

    /// The digest, in lowercase hex; `None` if a helper was lost.
    pub fn finish(self) -> Option<String> {
        let digest = match self.state {
            State::Inline(ctx) => ctx.finish(),
            State::Lent { chunks, done, .. } => {
                drop(chunks);
                done.recv().ok()?
            }
            State::Lost => return None,
        };
        Some(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Hash the rest of the file from where the reading stopped (the
    /// analysis of a damaged capture stops before the end), through `file`:
    /// a clone of the handle that was read, so a file replaced meanwhile
    /// cannot be mixed in. `None` (no digest rather than a partial one) when
    /// the rest cannot be read.
    pub fn finish_rest(mut self, mut file: std::fs::File) -> Option<String> {
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        file.seek(SeekFrom::Start(self.bytes)).ok()?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        self.finish()
    }
}

/// A reader that feeds a shared [`FileHash`] with what is read through it
/// (the capture reader owns the reader; the batch keeps the hash).
pub struct HashingReader<R> {
    pub inner: R,
    pub hash: Arc<Mutex<Option<FileHash>>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hash.lock() {
            if let Some(h) = h.as_mut() {
                h.update(&buf[..n]);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: Digest) -> String {
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn data() -> Vec<u8> {
        (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn inline_hash_is_sha256() {
        let d = data();
        let mut h = FileHash::new(None);
        for c in d.chunks(100_000) {
            h.update(c);
        }
        assert_eq!(h.bytes, d.len() as u64);
        assert_eq!(h.finish().unwrap(), hex(ring::digest::digest(&SHA256, &d)));
    }

    #[test]
    fn a_hash_lent_to_an_idle_worker_is_the_same() {
        let d = data();
        let pool = Arc::new(HashPool::new(2));
        let helper = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.reader().help_until_done())
        };
        let reader = pool.reader();
        // Wait until the helper is idle, so the hash is lent mid-stream.
        while pool.idle.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let mut h = FileHash::new(Some(pool.clone()));
        h.update(&d[..1000]); // small: hashed in place
        assert!(matches!(h.state, State::Inline(_)));
        for c in d[1000..].chunks(200_000) {
            h.update(c);
        }
        assert!(matches!(h.state, State::Lent { .. }));
        assert_eq!(h.finish().unwrap(), hex(ring::digest::digest(&SHA256, &d)));
        // The reader is done: the helper leaves.
        reader.help_until_done();
        helper.join().unwrap();
    }

    #[test]
    fn the_rest_of_a_file_is_hashed_when_reading_stopped_early() {
        let d = data();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.pcap");
        std::fs::write(&p, &d).unwrap();
        let mut h = FileHash::new(None);
        h.update(&d[..12345]);
        assert_eq!(
            h.finish_rest(std::fs::File::open(&p).unwrap()).unwrap(),
            hex(ring::digest::digest(&SHA256, &d))
        );
    }

    #[test]
    fn a_reader_that_never_finishes_does_not_strand_the_helpers() {
        // Three workers: one helps, one finishes normally, one "panics"
        // (its slot is dropped without helping). The helper must leave.
        let pool = Arc::new(HashPool::new(3));
        let helper = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.reader().help_until_done())
        };
        let crashed = pool.reader();
        let normal = pool.reader();
        drop(crashed);
        normal.help_until_done();
        helper.join().unwrap();
    }
}
