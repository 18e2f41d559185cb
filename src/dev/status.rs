//! The start-up status line: on a terminal one line rewritten in place (what `tributary
//! dev` is waiting for and for how long); otherwise one line per step, so logs and tests
//! see each step once.

use std::io::{IsTerminal, Write};
use std::time::Duration;

pub struct Status {
    tty: bool,
    /// The last message printed (not repeated when not on a terminal).
    last: String,
}

impl Status {
    pub fn new() -> Status {
        Status {
            tty: std::io::stderr().is_terminal(),
            last: String::new(),
        }
    }

    /// A new step.
    pub fn say(&mut self, msg: &str) {
        self.show(msg.to_string());
    }

    /// Still waiting for `what`, `elapsed` so far.
    pub fn waiting(&mut self, what: &str, elapsed: Duration) {
        if self.tty {
            self.show(format!("waiting for {what} ({}s)", elapsed.as_secs()));
        } else {
            self.show(format!("waiting for {what}"));
        }
    }

    /// Ends the status line (the next output starts on a fresh line).
    pub fn done(&mut self) {
        if self.tty && !self.last.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
        self.last.clear();
    }

    fn show(&mut self, msg: String) {
        if msg == self.last {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K[tributary dev] {msg}");
        } else {
            let _ = writeln!(err, "[tributary dev] {msg}");
        }
        let _ = err.flush();
        self.last = msg;
    }
}
