// Shared by the exercises' tests (`include!("../common/same_bytes.rs")`): comparing two byte
// strings with a failure that fits on a screen. `assert_eq!` on two vectors of a few thousand
// bytes prints every one of them as a number; this says what differs instead: both lengths,
// the first byte that differs, and the bytes around it in hex on both sides.

/// Fails the test unless `got == want`, saying where they first differ. `what` names the
/// bytes (`"the answer to seq 1 1000"`).
#[track_caller]
fn same(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let from = at.saturating_sub(8);
    // Up to 8 bytes before the first difference and 8 from it; `[..]` marks the byte at `at`,
    // `|end` the end of a side that stops there.
    let window = |bytes: &[u8]| -> String {
        let mut out = String::new();
        for (i, b) in bytes.iter().enumerate().take(at + 8).skip(from) {
            match i == at {
                true => out.push_str(&format!("[{b:02x}] ")),
                false => out.push_str(&format!("{b:02x} ")),
            }
        }
        if bytes.len() < at + 8 {
            out.push_str("|end");
        }
        out
    };
    panic!(
        "{what}: got {} bytes, expected {}; the first difference is at byte {at}\n  \
         got      (from byte {from}): {}\n  expected (from byte {from}): {}",
        got.len(),
        want.len(),
        window(got),
        window(want)
    );
}
