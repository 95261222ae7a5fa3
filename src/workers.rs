//! A fixed set of worker threads fed by a bounded queue.
//!
//! The number of workers is the request concurrency limit; the queue
//! bound turns overload into an immediate "busy" answer instead of an
//! unbounded backlog. Knows nothing of JSON-RPC.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a job was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Every worker is busy and the queue is full.
    Busy,
    /// The executor is shutting down.
    Closed,
}

pub struct Executor {
    /// `None` once shutdown began.
    sender: RwLock<Option<Sender<Job>>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    running: Arc<AtomicUsize>,
}

impl Executor {
    /// Starts `workers` threads sharing a queue of `queue` jobs.
    pub fn new(workers: usize, queue: usize) -> std::io::Result<Executor> {
        let (sender, receiver) = crossbeam_channel::bounded::<Job>(queue);
        let running = Arc::new(AtomicUsize::new(0));
        let handles = (0..workers)
            .map(|i| spawn_worker(i, receiver.clone(), Arc::clone(&running)))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Executor {
            sender: RwLock::new(Some(sender)),
            handles: Mutex::new(handles),
            running,
        })
    }

    /// Queues a job, or says at once why it cannot.
    pub fn try_submit(&self, job: Job) -> Result<(), Rejected> {
        let guard = self.sender.read();
        let sender = guard.as_ref().ok_or(Rejected::Closed)?;
        sender.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => Rejected::Busy,
            TrySendError::Disconnected(_) => Rejected::Closed,
        })
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.sender.read().as_ref().map_or(0, Sender::len)
    }

    /// Jobs being run right now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Stops taking jobs, lets queued and running ones finish, and waits
    /// for the workers until `deadline`. Returns whether all finished.
    /// May be called again (e.g. after cancelling what still runs): the
    /// workers not yet finished are kept and waited for again.
    pub fn shutdown(&self, deadline: Instant) -> bool {
        self.sender.write().take();
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

fn spawn_worker(
    index: usize,
    jobs: Receiver<Job>,
    running: Arc<AtomicUsize>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("worker-{index}"))
        .spawn(move || {
            for job in jobs {
                running.fetch_add(1, Ordering::SeqCst);
                // A panicking job must not take the worker (and with it a
                // unit of concurrency) down.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    log::error!("a request handler panicked; the worker carries on");
                }
                running.fetch_sub(1, Ordering::SeqCst);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn runs_jobs_on_the_workers() {
        let exec = Executor::new(2, 4).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..4 {
            let tx = tx.clone();
            exec.try_submit(Box::new(move || tx.send(i).unwrap()))
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
        let exec = Executor::new(1, 1).unwrap();
        let gate = Arc::new(Barrier::new(2));
        let g = Arc::clone(&gate);
        exec.try_submit(Box::new(move || {
            g.wait();
        }))
        .unwrap();
        // Wait until the worker has taken the first job off the queue.
        let deadline = Instant::now() + Duration::from_secs(5);
        while exec.running() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        exec.try_submit(Box::new(|| {})).unwrap();
        assert_eq!(exec.try_submit(Box::new(|| {})), Err(Rejected::Busy));
        gate.wait();
        assert!(exec.shutdown(Instant::now() + Duration::from_secs(5)));
    }

    #[test]
    fn a_panicking_job_does_not_kill_the_worker() {
        let exec = Executor::new(1, 2).unwrap();
        exec.try_submit(Box::new(|| panic!("boom"))).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        exec.try_submit(Box::new(move || tx.send(1).unwrap()))
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
    }

    #[test]
    fn shutdown_gives_up_at_the_deadline() {
        let exec = Executor::new(1, 1).unwrap();
        exec.try_submit(Box::new(|| std::thread::sleep(Duration::from_millis(300))))
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!exec.shutdown(Instant::now() + Duration::from_millis(20)));
        // A second call waits for the same worker again.
        assert!(exec.shutdown(Instant::now() + Duration::from_secs(5)));
    }
}
