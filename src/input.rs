//! Input lines for the clients: the notes' `input('...>>>:').strip()`.
//!
//! The prompt is shown only when stdin is a terminal, so a script that pipes commands in gets
//! clean stdout. End of input (Ctrl-D, Ctrl-Z on Windows, or the end of a pipe) is `None`.
//!
//! Typed on a Windows console, std hands us UTF-8 whatever the code page. Piped in
//! (`echo 你好| lesson02-client.exe`), the bytes are in the console code page: GBK on a Chinese
//! Windows. Asking Windows for that code page (`GetConsoleCP`) needs `unsafe`, so a line that
//! is not UTF-8 is read as GBK, as the clients already do with command output.

use std::io::{self, BufRead, IsTerminal, Write};

use crate::console::{decode_output, OutputEncoding};

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
    /// A line that is not UTF-8 is decoded as GBK (see the top of this file); bytes that are
    /// not GBK either become U+FFFD rather than failing the client.
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
        // Strictly UTF-8 or GBK: a line is whole, so `Auto`'s allowance for a character cut at
        // either end would take a lone GBK 好 (BA C3) for cut UTF-8.
        let text = match std::str::from_utf8(&raw) {
            Ok(text) => text.into(),
            Err(_) => decode_output(&raw, OutputEncoding::Gbk),
        };
        Ok(Some(text.trim().to_string()))
    }
}

impl Default for Input {
    fn default() -> Self {
        Self::new()
    }
}
