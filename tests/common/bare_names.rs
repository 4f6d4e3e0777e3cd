// The names every file-name check is tested with, and which rule refuses each: lesson 05's
// server (tests/lesson05.rs), lesson 07's service (tests/lesson07.rs) and the `bare_name`
// exercise's solution (exercises/, which includes this file). One list, so the three cannot
// drift apart unnoticed. Plain `//` comments: the exercises `include!` this file.
//
// A name a broken rule lets through gets written: so no absolute path here (each test adds
// one into its own scratch folder), and every relative one lands in the test's scratch folder
// or just above it.

/// Which rule refuses a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The bare-name rule: lesson 05, the exercise, and lesson 07, which applies it first.
    /// Not empty, at most 255 bytes, no leading `.`, no `/`, `\` or `:`, no control character.
    ByTheBareNameRule,
    /// Lesson 07 alone, on every system: the name shows as another name (an invisible or
    /// reordering character, or a name not in Unicode NFC form).
    AsALookAlike,
    /// Lesson 07 alone, on Windows alone: a name Windows refuses, or stores as another name
    /// (a trailing dot or space), or opens as a device.
    OnWindows,
    /// Nobody: a bare name that shows as what it is.
    No,
}

/// The names, each with the rule that refuses it.
pub fn bare_name_cases() -> Vec<(String, Refused)> {
    use Refused::*;
    let mut cases: Vec<(String, Refused)> = [
        // Paths and special names.
        ("", ByTheBareNameRule),
        (".", ByTheBareNameRule),
        ("..", ByTheBareNameRule),
        ("../escape.mp4", ByTheBareNameRule),
        ("../../escape.mp4", ByTheBareNameRule),
        ("..\\escape.mp4", ByTheBareNameRule),
        ("a/b.mp4", ByTheBareNameRule),
        ("a\\b.mp4", ByTheBareNameRule),
        ("C:escape.mp4", ByTheBareNameRule),
        ("video.mp4:stream", ByTheBareNameRule),
        (".hidden", ByTheBareNameRule),
        (".upload.part", ByTheBareNameRule),
        (".upload-1-0.tmp", ByTheBareNameRule),
        // Control characters: C0, DEL, C1.
        ("nul\0byte.mp4", ByTheBareNameRule),
        ("line\nbreak.mp4", ByTheBareNameRule),
        ("tab\there.mp4", ByTheBareNameRule),
        ("\u{1b}[2J.mp4", ByTheBareNameRule),
        ("del\u{7f}.mp4", ByTheBareNameRule),
        ("csi\u{9b}2J.mp4", ByTheBareNameRule),
        // Names that show as another name.
        ("invoice\u{202e}fdp.exe", AsALookAlike),
        ("a\u{200b}.mp4", AsALookAlike),
        ("\u{feff}a.mp4", AsALookAlike),
        ("a\u{2028}b.mp4", AsALookAlike),
        ("a\u{2066}b.mp4", AsALookAlike),
        ("soft\u{ad}hyphen.mp4", AsALookAlike),
        ("cafe\u{301}.mp4", AsALookAlike),
        // What Windows keeps for itself.
        ("CON", OnWindows),
        ("nul.txt", OnWindows),
        ("com1.mp4", OnWindows),
        ("why?.mp4", OnWindows),
        ("a|b.mp4", OnWindows),
        ("<b>.mp4", OnWindows),
        ("say \"hi\".mp4", OnWindows),
        ("star*.mp4", OnWindows),
        ("dot.", OnWindows),
        ("space ", OnWindows),
        // Bare names: dots, spaces, Chinese, an ideographic space, NFC accents.
        ("a.mp4", No),
        ("x", No),
        ("a..b", No),
        ("v1.2..final.mp4", No),
        ("01 后期课程安排.mp4", No),
        ("全角\u{3000}空格.mp4", No),
        ("caf\u{e9}.mp4", No),
        ("한국어.mp4", No),
        ("😀.mp4", No),
    ]
    .iter()
    .map(|&(name, refused)| (name.to_string(), refused))
    .collect();
    // The limit counts bytes, not characters: 视 is 3 bytes in UTF-8.
    cases.push(("视".repeat(85), No)); // 255 bytes
    cases.push(("视".repeat(85) + "x", ByTheBareNameRule)); // 256 bytes
    cases
}
