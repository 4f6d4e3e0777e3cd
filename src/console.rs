//! Text from a peer, on its way to the learner's screen: decoding it, and escaping it.
//!
//! Two parts, of two kinds:
//!
//! - [`decode_output`] is taught, not plumbing: it is lesson 03's fix for bug 9 of the
//!   top-level README's list. The notes' server sends whatever bytes the shell printed: UTF-8
//!   on Linux and macOS, GBK on a Chinese Windows console; the notes' clients decode with one
//!   or the other, mixed. We try UTF-8 first and fall back to GBK, or force one. It lives here,
//!   not in a lesson, because the clients of lessons 03 and 04, lesson 03's server and every
//!   client's stdin ([`crate::input`]) share it.
//! - The escaping is plumbing, one rule for every lesson: a character a terminal would obey or
//!   that hides or rearranges what is shown ([`must_escape`]) never reaches a terminal or a log
//!   as it is. [`terminal_safe`] is for a page of output (line breaks kept, a `\r` only as part
//!   of `\r\n`), [`one_line`] for a peer's text inside one line of a log or a message, and `wire::preview` is [`one_line`]'s
//!   rule plus quotes and a cut. Where a lesson logs a name or a command with Rust's `{:?}`
//!   instead, std escapes every one of these characters too (written `\u{202e}`; a test below
//!   checks that it does).

use std::borrow::Cow;
use std::fmt::Write as _;

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

// ---- Escaping: one rule for every place a peer's text reaches a terminal or a log ----

/// Whether `c` must not reach a terminal or a log as it is:
///
/// - a control character (Unicode's Cc: C0, DEL, C1), which a terminal obeys as a command:
///   `\x1b[2J` clears the screen, `\x1b]0;PWNED\x07` retitles the window (OpenSSH's scp printed
///   such text raw: CVE-2019-6109), a line feed starts a log line of the peer's making;
/// - a format or separator character (Cf, Zl, Zp), invisible or rearranging what is around it:
///   a right-to-left override (U+202E) makes `invoice\u202efdp.exe` show as `invoiceexe.pdf`
///   (Trojan Source, CVE-2021-42574), a zero-width space (U+200B) makes `a.mp4` and `a\u200b.mp4`
///   look alike, U+2028 breaks a line.
///
/// Lesson 07 refuses file names that hold any of them, by the same test.
pub fn must_escape(c: char) -> bool {
    c.is_control() || is_format_or_separator(c)
}

/// Whether `c` is in Unicode's general category Cf (format), Zl (line separator) or Zp
/// (paragraph separator). std has no general-category API, and these 21 ranges are all of it
/// (Unicode 15.1; generated with Python's `unicodedata.category`).
pub fn is_format_or_separator(c: char) -> bool {
    const RANGES: [(char, char); 21] = [
        ('\u{00ad}', '\u{00ad}'), // soft hyphen
        ('\u{0600}', '\u{0605}'), // Arabic number signs
        ('\u{061c}', '\u{061c}'), // Arabic letter mark
        ('\u{06dd}', '\u{06dd}'),
        ('\u{070f}', '\u{070f}'),
        ('\u{0890}', '\u{0891}'),
        ('\u{08e2}', '\u{08e2}'),
        ('\u{180e}', '\u{180e}'), // Mongolian vowel separator
        ('\u{200b}', '\u{200f}'), // zero-width space, joiners, LRM, RLM
        ('\u{2028}', '\u{202e}'), // line and paragraph separators (Zl, Zp), bidi embeddings, overrides
        ('\u{2060}', '\u{2064}'), // word joiner, invisible operators
        ('\u{2066}', '\u{206f}'), // bidi isolates, deprecated format characters
        ('\u{feff}', '\u{feff}'), // BOM, zero-width no-break space
        ('\u{fff9}', '\u{fffb}'), // interlinear annotation
        ('\u{110bd}', '\u{110bd}'),
        ('\u{110cd}', '\u{110cd}'),
        ('\u{13430}', '\u{1343f}'), // Egyptian hieroglyph format controls
        ('\u{1bca0}', '\u{1bca3}'), // shorthand format controls
        ('\u{1d173}', '\u{1d17a}'), // musical symbol format controls
        ('\u{e0001}', '\u{e0001}'), // language tag
        ('\u{e0020}', '\u{e007f}'), // tag characters
    ];
    RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// What happens to tab, line feed and carriage return: kept on a page of output (a carriage
/// return only as the first half of `\r\n`), escaped in one line of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Breaks {
    Keep,
    Escape,
}

/// Appends `c` to `out`, written out as Python's `repr()` writes it if it [`must_escape`]:
/// `\t`, `\n`, `\r`, then `\x1b` up to U+00FF, `\u202e` up to U+FFFF, `\U000e0001` beyond.
/// A `\r` is always written out here: only [`terminal_safe`], which sees the next character,
/// keeps the one of a `\r\n`.
pub(crate) fn push_safe(out: &mut String, c: char, breaks: Breaks) {
    // Writing to a String cannot fail.
    let _ = match c {
        '\t' | '\n' if breaks == Breaks::Keep => write!(out, "{c}"),
        '\t' => write!(out, "\\t"),
        '\n' => write!(out, "\\n"),
        '\r' => write!(out, "\\r"),
        c if !must_escape(c) => write!(out, "{c}"),
        c if (c as u32) <= 0xff => write!(out, "\\x{:02x}", c as u32),
        c if (c as u32) <= 0xffff => write!(out, "\\u{:04x}", c as u32),
        c => write!(out, "\\U{:08x}", c as u32),
    };
}

/// `text` with [`push_safe`] applied to every character; borrowed when nothing changes.
fn escaped(text: &str, breaks: Breaks) -> Cow<'_, str> {
    // Whether the character at byte `i` stays as it is. A `\r` stays only right before a
    // `\n`: `\r\n` is the line end of Windows programs (cmd.exe prints it), but alone it sends
    // the cursor back to the start of the line, and what follows is drawn over what was shown
    // (`Set-Cookie: a=b\rServer: nginx/1.2` would show as `Server: nginx/1.2`).
    let kept = |i: usize, c: char| match c {
        '\r' => breaks == Breaks::Keep && text.as_bytes().get(i + 1) == Some(&b'\n'),
        '\t' | '\n' => breaks == Breaks::Keep,
        c => !must_escape(c),
    };
    if text.char_indices().all(|(i, c)| kept(i, c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, c) in text.char_indices() {
        match kept(i, c) {
            true => out.push(c),
            false => push_safe(&mut out, c, breaks),
        }
    }
    Cow::Owned(out)
}

/// A page of a peer's text (a command's output, a reply) as it may go to a learner's terminal:
/// what [`must_escape`] names written out (`\x1b`, `\u202e`, a `\r` that is not part of a
/// `\r\n`), tab and line breaks kept, so Chinese, columns and lines print unchanged.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    escaped(text, Breaks::Keep)
}

/// A peer's text inside one line of a log or a message (`server refused: …`): like
/// [`terminal_safe`], and tab and line breaks written out too (`\n`), so the peer cannot start
/// a line of its own.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escaped(text, Breaks::Escape)
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
    fn terminal_safe_escapes_only_what_a_terminal_obeys_or_hides() {
        let normal = "第1行\tok\r\n  \u{FFFD} C:\\Users\u{3000}全角 é\n";
        assert_eq!(terminal_safe(normal), normal);
        assert!(matches!(terminal_safe(normal), Cow::Borrowed(_)));
        assert_eq!(
            terminal_safe("\x1b]0;PWNED\x07\x1b[2J\0\x7f\u{9b}31m"),
            "\\x1b]0;PWNED\\x07\\x1b[2J\\x00\\x7f\\x9b31m"
        );
        // Trojan Source and the invisible ones, in Python's repr() forms.
        assert_eq!(
            terminal_safe("invoice\u{202e}fdp.exe a\u{200b}b \u{ad}\u{2028}\u{feff}\u{e0001}"),
            "invoice\\u202efdp.exe a\\u200bb \\xad\\u2028\\ufeff\\U000e0001"
        );
    }

    #[test]
    fn one_line_escapes_line_breaks_and_tabs_too() {
        assert_eq!(one_line("no such file: 后期.mp4"), "no such file: 后期.mp4");
        assert_eq!(
            one_line("a\nfake log line\r\t\u{202e}\x1b"),
            "a\\nfake log line\\r\\t\\u202e\\x1b"
        );
    }

    /// A `\r` alone moves the cursor back to the start of the line, and what follows is drawn
    /// over what was shown: kept only as the first half of `\r\n`, the line end of cmd.exe.
    #[test]
    fn terminal_safe_keeps_a_cr_only_before_a_lf() {
        assert_eq!(terminal_safe("dir\r\n1\r\n"), "dir\r\n1\r\n");
        assert_eq!(
            terminal_safe("Set-Cookie: a=b\rServer: nginx/1.2"),
            "Set-Cookie: a=b\\rServer: nginx/1.2"
        );
        assert_eq!(terminal_safe("\r\r\n\n\r"), "\\r\r\n\n\\r");
        assert_eq!(one_line("a\r\nb"), "a\\r\\nb");
    }

    /// Python's `repr()` writes the same: `python3 -c "print(repr('\x1b\x9b\xad\u200b\u202e\U000e0001\t'))"`
    /// prints `'\x1b\x9b\xad\u200b\u202e\U000e0001\t'`.
    #[test]
    fn the_escapes_are_pythons() {
        assert_eq!(
            one_line("\x1b\u{9b}\u{ad}\u{200b}\u{202e}\u{e0001}\t"),
            r"\x1b\x9b\xad\u200b\u202e\U000e0001\t"
        );
    }

    /// The lessons log names and commands with `{:?}` too: std's Debug must escape at least
    /// what this rule escapes, or a log line would carry a Trojan Source character raw.
    #[test]
    fn rusts_debug_escapes_everything_this_rule_escapes() {
        let raw: Vec<char> = (0..=char::MAX as u32)
            .filter_map(char::from_u32)
            .filter(|&c| must_escape(c) && format!("{:?}", format!("a{c}b")).contains(c))
            .collect();
        assert!(raw.is_empty(), "{{:?}} prints these raw: {raw:?}");
    }
}
