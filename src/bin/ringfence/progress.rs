//! Status and progress on standard error: a line rewritten in place on a
//! terminal, a plain line every ten seconds elsewhere (so CI logs stay
//! short), and nothing for work that takes under a second.

use ringfence::replay::Progress;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Status {
    quiet: bool,
    tty: bool,
    phase: Instant,
    last: Option<Instant>,
    shown: bool,
}

impl Status {
    pub fn new(quiet: bool) -> Status {
        Status {
            quiet,
            tty: io::stderr().is_terminal(),
            phase: Instant::now(),
            last: None,
            shown: false,
        }
    }

    /// A line that stays: what is starting.
    pub fn message(&mut self, text: &str) {
        self.phase = Instant::now();
        self.last = None;
        if !self.quiet {
            self.clear();
            eprintln!("{text}");
        }
    }

    /// A line that stays: what finished.
    pub fn done(&mut self, text: &str) {
        self.message(text);
    }

    /// Progress on the current work (throttled).
    pub fn tick(&mut self, text: &str) {
        if self.quiet || self.phase.elapsed() < Duration::from_secs(1) {
            return;
        }
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.last.is_some_and(|l| l.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let mut err = io::stderr().lock();
        // Progress is a courtesy: a failure to show it is not an error.
        let _ = if self.tty {
            self.shown = true;
            write!(err, "\r\x1b[2K{text}").and_then(|()| err.flush())
        } else {
            writeln!(err, "{text}")
        };
    }

    /// Progress of a replay; `total` is the trace's size in bytes, if known.
    pub fn progress(&mut self, p: Progress, total: Option<u64>) {
        let rate = if p.elapsed_secs > 0.0 {
            p.lines as f64 / p.elapsed_secs
        } else {
            0.0
        };
        let mut text = format!(
            "replaying ... {} lines, {} lines/s",
            crate::render::count(p.lines),
            crate::render::count(rate as u64)
        );
        if let Some(total) = total.filter(|t| *t > 0) {
            let done = (p.bytes as f64 / total as f64).min(1.0);
            text.push_str(&format!(", {:.0} %", 100.0 * done));
            if done > 0.0 {
                let left = p.elapsed_secs * (1.0 - done) / done;
                text.push_str(&format!(", about {left:.0} s left"));
            }
        }
        self.tick(&text);
    }

    /// Removes a progress line from a terminal.
    pub fn clear(&mut self) {
        if self.shown {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K").and_then(|()| err.flush());
            self.shown = false;
        }
    }
}
