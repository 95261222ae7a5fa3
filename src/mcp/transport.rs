//! The stdio transport: newline-delimited messages in, one writer thread
//! that alone owns stdout.

use crossbeam_channel::{Receiver, Sender};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Longest line we accept. Larger messages are answered with an error
/// and skipped, so one huge message cannot exhaust memory.
pub const MAX_LINE: usize = 16 << 20;

/// One line from the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Message(Vec<u8>),
    /// A line longer than [`MAX_LINE`]; its bytes were discarded.
    TooLong(usize),
}

/// Reads the next line (without its newline), or `None` at end of input.
pub fn read_line(input: &mut impl BufRead, max: usize) -> std::io::Result<Option<Line>> {
    let mut buf = Vec::new();
    let mut discarded = 0usize;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(finish(buf, discarded, true));
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if discarded > 0 || buf.len() + part.len() > max {
            discarded += buf.len() + part.len();
            buf = Vec::new();
        } else {
            buf.extend_from_slice(part);
        }
        let used = done.unwrap_or(chunk.len());
        input.consume(used);
        if done.is_some() {
            return Ok(finish(buf, discarded, false));
        }
    }
}

fn finish(mut buf: Vec<u8>, discarded: usize, eof: bool) -> Option<Line> {
    if discarded > 0 {
        return Some(Line::TooLong(discarded));
    }
    if eof && buf.is_empty() {
        return None;
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Some(Line::Message(buf))
}

/// Sends finished messages to the writer thread.
#[derive(Clone)]
pub struct Outbox {
    tx: Sender<String>,
    /// Sent but not yet written and flushed.
    unwritten: Arc<AtomicUsize>,
}

impl Outbox {
    pub fn send(&self, message: String) {
        // Fails only once the writer is gone, i.e. during shutdown.
        self.unwritten.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(message).is_err() {
            self.unwritten.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Messages not yet written and flushed.
    pub fn pending(&self) -> usize {
        self.unwritten.load(Ordering::SeqCst)
    }
}

/// Starts the thread that writes each message as one line to `out`.
/// It ends when every [`Outbox`] is dropped, after writing what is queued.
pub fn start_writer(out: impl Write + Send + 'static) -> std::io::Result<(Outbox, JoinHandle<()>)> {
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    let unwritten = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&unwritten);
    let handle = std::thread::Builder::new()
        .name("stdout-writer".into())
        .spawn(move || write_all(rx, out, &counter))?;
    Ok((Outbox { tx, unwritten }, handle))
}

/// Messages that arrive while one is being written are gathered and
/// written together, with one flush: under load that is one write
/// syscall for many answers instead of two each.
const BATCH_BYTES: usize = 1 << 20;

fn write_all(rx: Receiver<String>, mut out: impl Write, unwritten: &AtomicUsize) {
    let mut batch = Vec::with_capacity(64 * 1024);
    while let Ok(first) = rx.recv() {
        let mut count = 1;
        append_line(&mut batch, first);
        while batch.len() < BATCH_BYTES {
            let Ok(next) = rx.try_recv() else { break };
            append_line(&mut batch, next);
            count += 1;
        }
        let written = out.write_all(&batch).and_then(|()| out.flush());
        unwritten.fetch_sub(count, Ordering::SeqCst);
        if let Err(e) = written {
            // The client is gone; nothing more can be delivered.
            log::warn!("cannot write to stdout: {e}");
            return;
        }
        batch.clear();
        // One huge answer must not pin its memory for the rest of the run.
        batch.shrink_to(64 * 1024);
    }
}

fn append_line(batch: &mut Vec<u8>, message: String) {
    batch.extend_from_slice(message.as_bytes());
    batch.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        // A tiny buffer exercises lines that span several reads.
        let mut reader = BufReader::with_capacity(3, input);
        std::iter::from_fn(|| read_line(&mut reader, max).unwrap()).collect()
    }

    #[test]
    fn splits_on_newlines_and_strips_cr() {
        assert_eq!(
            lines(b"ab\r\ncd\n\nlast", 100),
            vec![
                Line::Message(b"ab".to_vec()),
                Line::Message(b"cd".to_vec()),
                Line::Message(vec![]),
                Line::Message(b"last".to_vec()),
            ]
        );
    }

    #[test]
    fn an_oversized_line_is_skipped_and_reading_goes_on() {
        assert_eq!(
            lines(b"0123456789\nok\n", 5),
            vec![Line::TooLong(10), Line::Message(b"ok".to_vec())]
        );
    }

    #[derive(Default, Clone)]
    struct SharedBuf(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);
    impl Write for SharedBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn queued_messages_are_written_before_the_writer_ends() {
        let buf = SharedBuf::default();
        let (outbox, handle) = start_writer(buf.clone()).unwrap();
        outbox.send("{\"a\":1}".into());
        outbox.send("{\"b\":2}".into());
        drop(outbox);
        handle.join().unwrap();
        assert_eq!(&*buf.0.lock(), b"{\"a\":1}\n{\"b\":2}\n");
    }

    #[test]
    fn a_burst_is_written_whole_in_order_and_counted_down() {
        let buf = SharedBuf::default();
        let (outbox, handle) = start_writer(buf.clone()).unwrap();
        let expected: String = (0..1000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        for i in 0..1000 {
            outbox.send(format!("{{\"n\":{i}}}"));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while outbox.pending() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(outbox.pending(), 0);
        drop(outbox);
        handle.join().unwrap();
        assert_eq!(String::from_utf8(buf.0.lock().clone()).unwrap(), expected);
    }
}
