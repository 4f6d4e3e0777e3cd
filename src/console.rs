//! Decoding the output of a command run by the server (lessons 03 and 04).
//!
//! The notes' server sends whatever bytes the shell printed: UTF-8 on Linux and macOS, GBK on
//! a Chinese Windows console. The notes' clients decode with one or the other, mixed (bug 9 in
//! the top-level README's list). We try UTF-8 first and fall back to GBK, or force one.
//! Whatever the text, [`terminal_safe`] makes it harmless to print.

use std::borrow::Cow;

/// How to turn output bytes into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputEncoding {
    /// UTF-8 when the bytes are UTF-8 (a character cut at either end allowed), GBK otherwise
    #[default]
    Auto,
    /// UTF-8; invalid bytes become U+FFFD
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    /// GBK, the code page of a Chinese Windows console (cp936)
    Gbk,
}

/// Decodes `bytes` as `encoding` says. Never fails: undecodable bytes become U+FFFD.
///
/// A chunk cut in the middle of a character (lesson 03's `read(1024)` does that) is still
/// UTF-8: `Auto` decodes it as UTF-8, with a U+FFFD at the cut, instead of taking the whole
/// chunk for GBK and printing every Chinese character as mojibake.
pub fn decode_output(bytes: &[u8], encoding: OutputEncoding) -> Cow<'_, str> {
    match encoding {
        OutputEncoding::Utf8 => String::from_utf8_lossy(bytes),
        OutputEncoding::Gbk => encoding_rs::GBK.decode_without_bom_handling(bytes).0,
        OutputEncoding::Auto if looks_like_utf8(bytes) => String::from_utf8_lossy(bytes),
        OutputEncoding::Auto => encoding_rs::GBK.decode_without_bom_handling(bytes).0,
    }
}

/// Whether `bytes` are UTF-8 except, possibly, for a character cut off at either end: up to 3
/// continuation bytes (`10xxxxxx`) at the start, the first bytes of a character at the end.
fn looks_like_utf8(bytes: &[u8]) -> bool {
    let cut_start = bytes
        .iter()
        .take(3)
        .take_while(|&&b| b & 0xC0 == 0x80)
        .count();
    match std::str::from_utf8(&bytes[cut_start..]) {
        Ok(_) => true,
        // error_len() is None only when the input ends in the middle of a character.
        Err(e) => e.error_len().is_none(),
    }
}

/// `text` as it may go to a learner's terminal: every character a terminal would obey as a
/// command (the C0 controls but tab, line feed and carriage return; DEL; the C1 controls)
/// written out as Python writes it, `\x1b`; everything else as is, so a command's output
/// (Chinese, tabs, line breaks) prints unchanged. The bytes come from a server, and a hostile
/// one could send `\x1b]0;PWNED\x07` (retitle the window) or `\x1b[2J` (clear the screen):
/// OpenSSH's scp printed such text raw (CVE-2019-6109).
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    let obeyed = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
    if !text.contains(obeyed) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match obeyed(c) {
            // `is_control` is C0, DEL and C1: all below U+00A0, two hex digits.
            true => out.push_str(&format!("\\x{:02x}", c as u32)),
            false => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_stays_utf8() {
        let text = "你好 hello";
        assert_eq!(decode_output(text.as_bytes(), OutputEncoding::Auto), text);
    }

    #[test]
    fn gbk_bytes_fall_back_to_gbk() {
        // "你好" in GBK: C4 E3 BA C3 (not valid UTF-8).
        let gbk = [0xC4, 0xE3, 0xBA, 0xC3];
        assert_eq!(decode_output(&gbk, OutputEncoding::Auto), "你好");
        assert_eq!(decode_output(&gbk, OutputEncoding::Gbk), "你好");
        assert!(decode_output(&gbk, OutputEncoding::Utf8).starts_with('\u{FFFD}'));
    }

    #[test]
    fn utf8_cut_at_either_end_stays_utf8() {
        let text = "1中\n2中\n3中\n".as_bytes();
        // Cut inside the first 中 and inside the last one, as two reads of a stream may.
        let middle = &text[3..text.len() - 2];
        assert_eq!(
            decode_output(middle, OutputEncoding::Auto),
            "\u{FFFD}\n2中\n3\u{FFFD}"
        );
    }

    #[test]
    fn terminal_safe_escapes_only_what_a_terminal_obeys() {
        let normal = "第1行\tok\r\n  \u{FFFD} C:\\Users\n";
        assert_eq!(terminal_safe(normal), normal);
        assert_eq!(
            terminal_safe("\x1b]0;PWNED\x07\x1b[2J\0\x7f\u{9b}31m"),
            "\\x1b]0;PWNED\\x07\\x1b[2J\\x00\\x7f\\x9b31m"
        );
    }
}
