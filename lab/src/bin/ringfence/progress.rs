//! Status and progress on standard error: a line rewritten in place on a
//! terminal, a plain line every ten seconds elsewhere (so CI logs stay
//! short), and nothing for work that takes under a second.

use ringfence_lab::replay::Progress;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Status {
    quiet: bool,
    tty: bool,
    phase: Instant,
    last: Option<Instant>,
    shown: bool,
    /// The replay's (bytes, seconds) at the last progress shown, for a rate
    /// that follows the guard slowing down as it learns more.
    mark: (u64, f64),
}

impl Status {
    pub fn new(quiet: bool) -> Status {
        Status {
            quiet,
            tty: io::stderr().is_terminal(),
            phase: Instant::now(),
            last: None,
            shown: false,
            mark: (0, 0.0),
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

    /// Progress on the current work (throttled); whether it was shown.
    pub fn tick(&mut self, text: &str) -> bool {
        if self.quiet || self.phase.elapsed() < Duration::from_secs(1) {
            return false;
        }
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.last.is_some_and(|l| l.elapsed() < every) {
            return false;
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
        true
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
            // Time left at the pace since the last progress shown.
            let (bytes, secs) = self.mark;
            let pace = (p.bytes.saturating_sub(bytes)) as f64 / (p.elapsed_secs - secs);
            if pace.is_finite() && pace > 0.0 && p.bytes > bytes {
                let left = total.saturating_sub(p.bytes) as f64 / pace;
                text.push_str(&format!(", about {left:.0} s left"));
            }
        }
        if self.tick(&text) {
            self.mark = (p.bytes, p.elapsed_secs);
        }
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
