//! Input lines for the clients: the notes' `input('...>>>:').strip()`.
//!
//! The prompt is shown only when stdin is a terminal, so a script that pipes commands in gets
//! clean stdout. End of input (Ctrl-D, Ctrl-Z on Windows, or the end of a pipe) is `None`.

use std::io::{self, BufRead, IsTerminal, Write};

/// Reads stdin one line at a time.
pub struct Input {
    stdin: io::StdinLock<'static>,
    interactive: bool,
}

impl Input {
    pub fn new() -> Self {
        let stdin = io::stdin();
        let interactive = stdin.is_terminal();
        Input {
            stdin: stdin.lock(),
            interactive,
        }
    }

    /// Shows `prompt` (on a terminal only) and returns the next line with surrounding
    /// whitespace removed, like Python's `input(prompt).strip()`. `Ok(None)` at end of input.
    ///
    /// The line may be empty: skipping empty input is the lesson's job (the notes' step 1).
    /// Bytes that are not UTF-8 are replaced with U+FFFD rather than failing the client.
    pub fn line(&mut self, prompt: &str) -> io::Result<Option<String>> {
        if self.interactive {
            let mut out = io::stdout().lock();
            write!(out, "{prompt}")?;
            out.flush()?;
        }
        let mut raw = Vec::new();
        if self.stdin.read_until(b'\n', &mut raw)? == 0 {
            if self.interactive {
                // Ctrl-D leaves the cursor after the prompt: end that line, so whatever is
                // printed next (a summary, the shell's prompt) starts on a line of its own.
                println!();
            }
            return Ok(None);
        }
        Ok(Some(String::from_utf8_lossy(&raw).trim().to_string()))
    }
}

impl Default for Input {
    fn default() -> Self {
        Self::new()
    }
}
