//! Progress of a long import: a bar with messages/s and ETA when standard error is a
//! terminal (indicatif), a plain line every few seconds when it is not (a log, a pipe).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is written.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Progress through `len` units: messages, or octets of an mbox file.
pub struct Progress {
    bar: Option<ProgressBar>,
    octets: bool,
    len: u64,
    start: Instant,
    last_line: Instant,
    messages: u64,
}

impl Progress {
    /// Starts showing progress through `len` messages (`octets` false) or octets.
    pub fn new(len: u64, octets: bool) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let template = if octets {
                "{bar:30} {bytes}/{total_bytes} {msg} ({bytes_per_sec}, ETA {eta})"
            } else {
                "{bar:30} {pos}/{len} messages {msg}(ETA {eta})"
            };
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            octets,
            len,
            start: now,
            last_line: now,
            messages: 0,
        }
    }

    /// Messages read so far, and (for octets) the position in the file.
    pub fn set(&mut self, messages: u64, position: u64) {
        self.messages = messages;
        let pos = if self.octets { position } else { messages };
        let rate = self.rate();
        match &self.bar {
            Some(bar) => {
                bar.set_position(pos);
                bar.set_message(format!("{messages} messages, {rate:.0}/s "));
            }
            None if self.last_line.elapsed() >= PLAIN_EVERY => {
                self.last_line = Instant::now();
                let percent = if self.len == 0 {
                    100.0
                } else {
                    pos as f64 * 100.0 / self.len as f64
                };
                eprintln!(
                    "tern import: {messages} messages read ({percent:.0}%), {rate:.0} messages/s"
                );
            }
            None => {}
        }
    }

    fn rate(&self) -> f64 {
        self.messages as f64 / self.start.elapsed().as_secs_f64().max(0.001)
    }

    /// Writes a line (a skipped message) without tearing the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
