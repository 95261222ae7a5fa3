//! A fixed set of worker threads fed by two bounded queues (lanes).
//!
//! The number of workers is the request concurrency limit; the queue
//! bounds turn overload into an immediate "busy" answer instead of an
//! unbounded backlog. Quick jobs (reads, listings) and bulk jobs (long
//! commands, transfers) queue separately, and some workers take only
//! quick jobs, so a burst of long jobs can never leave a quick one
//! without a worker. The other workers take quick jobs first, then bulk.
//! Knows nothing of JSON-RPC or of what makes a job quick.

use crossbeam_channel::{select_biased, Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Which queue a job waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Short jobs; served by every worker, before any bulk job.
    Quick,
    /// Jobs that may run as long as their timeouts allow; never served
    /// by the workers reserved for quick jobs.
    Bulk,
}

impl Lane {
    pub fn name(self) -> &'static str {
        match self {
            Lane::Quick => "quick",
            Lane::Bulk => "bulk",
        }
    }
}

/// Why a job was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Every worker is busy and the job's queue is full.
    Busy,
    /// The executor is shutting down.
    Closed,
}

struct Senders {
    quick: Sender<Job>,
    bulk: Sender<Job>,
}

impl Senders {
    fn of(&self, lane: Lane) -> &Sender<Job> {
        match lane {
            Lane::Quick => &self.quick,
            Lane::Bulk => &self.bulk,
        }
    }
}

pub struct Executor {
    /// `None` once shutdown began.
    senders: RwLock<Option<Senders>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    running: Arc<AtomicUsize>,
}

impl Executor {
    /// Starts `workers` threads, `quick_workers` of them (fewer than
    /// `workers`, or none) reserved for quick jobs. Each lane queues up
    /// to `queue` jobs: a flood of bulk jobs must not use up the room
    /// quick ones need.
    pub fn new(workers: usize, quick_workers: usize, queue: usize) -> std::io::Result<Executor> {
        let (quick_tx, quick_rx) = crossbeam_channel::bounded::<Job>(queue);
        let (bulk_tx, bulk_rx) = crossbeam_channel::bounded::<Job>(queue);
        let running = Arc::new(AtomicUsize::new(0));
        let reserved = quick_workers.min(workers.saturating_sub(1));
        let handles = (0..workers)
            .map(|i| {
                let feed = if i < reserved {
                    Feed::QuickOnly(quick_rx.clone())
                } else {
                    Feed::Both(quick_rx.clone(), bulk_rx.clone())
                };
                spawn_worker(i, feed, Arc::clone(&running))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Executor {
            senders: RwLock::new(Some(Senders {
                quick: quick_tx,
                bulk: bulk_tx,
            })),
            handles: Mutex::new(handles),
            running,
        })
    }

    /// Queues a job in `lane`, or says at once why it cannot.
    pub fn try_submit(&self, job: Job, lane: Lane) -> Result<(), Rejected> {
        let guard = self.senders.read();
        let senders = guard.as_ref().ok_or(Rejected::Closed)?;
        senders.of(lane).try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => Rejected::Busy,
            TrySendError::Disconnected(_) => Rejected::Closed,
        })
    }

    /// Jobs waiting for a worker, in both lanes.
    pub fn queued(&self) -> usize {
        self.queued_in(Lane::Quick) + self.queued_in(Lane::Bulk)
    }

    /// Jobs waiting for a worker in `lane`.
    pub fn queued_in(&self, lane: Lane) -> usize {
        self.senders.read().as_ref().map_or(0, |s| s.of(lane).len())
    }

    /// Jobs being run right now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Stops taking jobs, lets queued (both lanes) and running ones
    /// finish, and waits for the workers until `deadline`. Returns whether
    /// all finished. May be called again (e.g. after cancelling what still
    /// runs): the workers not yet finished are kept and waited for again.
    pub fn shutdown(&self, deadline: Instant) -> bool {
        self.senders.write().take();
        loop {
            let mut handles = self.handles.lock();
            let (done, running): (Vec<_>, Vec<_>) =
                handles.drain(..).partition(JoinHandle::is_finished);
            *handles = running;
            drop(handles);
            for handle in done {
                let _ = handle.join();
            }
            if self.handles.lock().is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The queues one worker takes jobs from.
enum Feed {
    QuickOnly(Receiver<Job>),
    /// Quick first, then bulk.
    Both(Receiver<Job>, Receiver<Job>),
}

impl Feed {
    /// Runs jobs until the queues it reads are closed and drained.
    fn serve(self, run: impl Fn(Job)) {
        let (quick, bulk) = match self {
            Feed::QuickOnly(quick) => return quick.iter().for_each(run),
            Feed::Both(quick, bulk) => (quick, bulk),
        };
        loop {
            // Biased: a ready quick job always wins over a ready bulk one.
            let next = select_biased! {
                recv(quick) -> job => job.map_err(|_| Lane::Quick),
                recv(bulk) -> job => job.map_err(|_| Lane::Bulk),
            };
            match next {
                Ok(job) => run(job),
                // One lane is closed and empty (shutdown): drain the other,
                // which selecting would starve by always seeing the closed one.
                Err(Lane::Quick) => return bulk.iter().for_each(run),
                Err(Lane::Bulk) => return quick.iter().for_each(run),
            }
        }
    }
}

fn spawn_worker(
    index: usize,
    feed: Feed,
    running: Arc<AtomicUsize>,
) -> std::io::Result<JoinHandle<()>> {
    let name = match feed {
        Feed::QuickOnly(_) => format!("worker-{index}-quick"),
        Feed::Both(..) => format!("worker-{index}"),
    };
    std::thread::Builder::new().name(name).spawn(move || {
        feed.serve(|job| {
            running.fetch_add(1, Ordering::SeqCst);
            // A panicking job must not take the worker (and with it a
            // unit of concurrency) down.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                log::error!("a request handler panicked; the worker carries on");
            }
            running.fetch_sub(1, Ordering::SeqCst);
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn runs_jobs_on_the_workers() {
        let exec = Executor::new(2, 0, 4).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..4 {
            let tx = tx.clone();
            exec.try_submit(Box::new(move || tx.send(i).unwrap()), Lane::Quick)
                .unwrap();
        }
        let mut got: Vec<i32> = (0..4)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_full_queue_rejects_at_once() {
        let exec = Executor::new(1, 0, 1).unwrap();
        let gate = Arc::new(Barrier::new(2));
        let g = Arc::clone(&gate);
        exec.try_submit(
            Box::new(move || {
                g.wait();
            }),
            Lane::Quick,
        )
        .unwrap();
        // Wait until the worker has taken the first job off the queue.
        let deadline = Instant::now() + Duration::from_secs(5);
        while exec.running() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        exec.try_submit(Box::new(|| {}), Lane::Quick).unwrap();
        assert_eq!(
            exec.try_submit(Box::new(|| {}), Lane::Quick),
            Err(Rejected::Busy)
        );
        gate.wait();
        assert!(exec.shutdown(Instant::now() + Duration::from_secs(5)));
    }

    #[test]
    fn a_panicking_job_does_not_kill_the_worker() {
        let exec = Executor::new(1, 0, 2).unwrap();
        exec.try_submit(Box::new(|| panic!("boom")), Lane::Quick)
            .unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        exec.try_submit(Box::new(move || tx.send(1).unwrap()), Lane::Quick)
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
    }

    #[test]
    fn shutdown_gives_up_at_the_deadline() {
        let exec = Executor::new(1, 0, 1).unwrap();
        exec.try_submit(
            Box::new(|| std::thread::sleep(Duration::from_millis(300))),
            Lane::Quick,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!exec.shutdown(Instant::now() + Duration::from_millis(20)));
        // A second call waits for the same worker again.
        assert!(exec.shutdown(Instant::now() + Duration::from_secs(5)));
    }

    /// A job that blocks until `gate` is closed (its sender dropped).
    fn blocked(gate: &Receiver<()>) -> Job {
        let gate = gate.clone();
        Box::new(move || {
            let _ = gate.recv_timeout(Duration::from_secs(10));
        })
    }

    fn wait_running(exec: &Executor, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while exec.running() < n {
            assert!(Instant::now() < deadline, "{n} jobs never started");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_quick_job_runs_while_every_other_worker_is_on_a_bulk_job() {
        let exec = Executor::new(3, 1, 4).unwrap();
        let (open, gate) = crossbeam_channel::bounded::<()>(0);
        for _ in 0..3 {
            exec.try_submit(blocked(&gate), Lane::Bulk).unwrap();
        }
        wait_running(&exec, 2);
        let (tx, rx) = crossbeam_channel::unbounded();
        exec.try_submit(Box::new(move || tx.send("quick").unwrap()), Lane::Quick)
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("quick"));
        // The third bulk job still waits: the idle reserved worker ran
        // the quick job but did not touch it.
        assert_eq!(exec.queued_in(Lane::Bulk), 1);
        drop(open);
        assert!(exec.shutdown(Instant::now() + Duration::from_secs(5)));
    }

    #[test]
    fn bulk_jobs_never_run_on_a_reserved_worker() {
        let exec = Executor::new(4, 2, 64).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        for _ in 0..40 {
            let tx = tx.clone();
            let job = move || {
                let name = std::thread::current().name().map(str::to_string);
                std::thread::sleep(Duration::from_millis(1));
                tx.send(name).unwrap();
            };
            exec.try_submit(Box::new(job), Lane::Bulk).unwrap();
        }
        for _ in 0..40 {
            let name = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            let name = name.unwrap_or_default();
            assert!(
                name.starts_with("worker-") && !name.ends_with("-quick"),
                "{name}"
            );
        }
    }

    #[test]
    fn each_lane_rejects_when_its_own_queue_is_full() {
        let exec = Executor::new(2, 1, 1).unwrap();
        let (open, gate) = crossbeam_channel::bounded::<()>(0);
        // Only the general worker can take the bulk job; then only the
        // reserved one is free for the quick job.
        exec.try_submit(blocked(&gate), Lane::Bulk).unwrap();
        wait_running(&exec, 1);
        exec.try_submit(blocked(&gate), Lane::Quick).unwrap();
        wait_running(&exec, 2);
        for lane in [Lane::Quick, Lane::Bulk] {
            exec.try_submit(Box::new(|| {}), lane).unwrap();
            assert_eq!(
                exec.try_submit(Box::new(|| {}), lane),
                Err(Rejected::Busy),
                "{}",
                lane.name()
            );
        }
        assert_eq!(exec.queued(), 2);
        drop(open);
        assert!(exec.shutdown(Instant::now() + Duration::from_secs(5)));
    }

    #[test]
    fn shutdown_drains_both_lanes() {
        let exec = Executor::new(2, 1, 8).unwrap();
        let (open, gate) = crossbeam_channel::bounded::<()>(0);
        exec.try_submit(blocked(&gate), Lane::Bulk).unwrap();
        wait_running(&exec, 1);
        exec.try_submit(blocked(&gate), Lane::Quick).unwrap();
        wait_running(&exec, 2);
        let done = Arc::new(AtomicUsize::new(0));
        for lane in [Lane::Quick, Lane::Bulk, Lane::Quick, Lane::Bulk] {
            let done = Arc::clone(&done);
            let job = move || {
                done.fetch_add(1, Ordering::SeqCst);
            };
            exec.try_submit(Box::new(job), lane).unwrap();
        }
        assert!(!exec.shutdown(Instant::now() + Duration::from_millis(10)));
        assert_eq!(
            exec.try_submit(Box::new(|| {}), Lane::Quick),
            Err(Rejected::Closed)
        );
        drop(open);
        assert!(exec.shutdown(Instant::now() + Duration::from_secs(5)));
        assert_eq!(done.load(Ordering::SeqCst), 4);
    }
}
