//! Every README has a Chinese twin, `README.zh-CN.md` in the same folder, and the two must not
//! drift apart: each links the other at the top, their fenced code blocks (commands and program
//! output) are byte-identical and in the same order, they have the same sections, tables and
//! pictures, the Chinese page is mostly Chinese, and the Chinese pages use the glossary's words
//! (the notes' own: 黏包, 报头, 半连接池, …).
//!
//! Plain string handling, no Markdown parser: the pages are written in a small, regular subset
//! (ATX headings, pipe tables, ``` fences), and a failure names the page, the block and the line.

use std::fs;
use std::path::{Path, PathBuf};

/// The folders (relative to the repository root) whose README.md must have a README.zh-CN.md.
/// A new page joins this list when its Chinese twin is written.
const TWINNED: &[&str] = &[
    "",
    "lessons/01_basic",
    "lessons/02_loop",
    "lessons/03_sticky",
    "lessons/04_header",
    "lessons/05_upload",
    "lessons/06_udp",
    "lessons/07_video_service",
    "lessons/08_browser",
    "lessons/09_threads",
    "lessons/10_pool",
    "lessons/11_select",
    "lessons/12_async",
    "exercises",
];

/// Folders (prefixes) whose READMEs have no Chinese twin yet. Every other README must be in
/// `TWINNED`, so a new lesson cannot be forgotten silently.
const NOT_YET_TRANSLATED: &[&str] = &[];

/// The language switch, the first line of each page.
const SWITCH_EN: &str = "English | [简体中文](README.zh-CN.md)";
const SWITCH_ZH: &str = "[English](README.md) | 简体中文";

/// Terms every glossary's first column (the notes' words) must hold.
const GLOSSARY_TERMS: &[&str] = &[
    "套接字",
    "服务端",
    "客户端",
    "三次握手",
    "四次挥手",
    "半连接池",
    "通信循环",
    "链接循环",
    "流式协议",
    "数据报协议",
    "数据报",
    "黏包",
    "报头",
    "字典报头",
    "优酷",
    "协程",
];

/// Words that must not appear on any page, with the glossary's word to write instead.
const NOT_OUR_WORDS: &[(&str, &str)] = &[
    ("粘包", "黏包"),
    ("包头", "报头"),
    ("连接循环", "链接循环"),
    ("服务器端", "服务端"),
    ("客户机", "客户端"),
];

/// The Chinese page's prose (outside code, links and URLs): at least this share of its letters
/// and digits are Han characters.
const MIN_HAN_SHARE: f64 = 1.0 / 3.0;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A page's text with Windows line endings (a checkout with autocrlf) made plain.
fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .replace("\r\n", "\n")
}

fn english(dir: &str) -> PathBuf {
    root().join(dir).join("README.md")
}

fn chinese(dir: &str) -> PathBuf {
    root().join(dir).join("README.zh-CN.md")
}

/// The pair of every twinned folder, for the display "lessons/01_basic/README*.md".
fn pairs() -> Vec<(String, String, String)> {
    TWINNED
        .iter()
        .map(|dir| {
            let name = if dir.is_empty() {
                "README*.md".to_string()
            } else {
                format!("{dir}/README*.md")
            };
            (name, read(&english(dir)), read(&chinese(dir)))
        })
        .collect()
}

/// The folders holding a README.md: the root, each lessons/*/ and anything under exercises/.
fn readme_folders() -> Vec<String> {
    fn walk(dir: &Path, rel: &str, deep: bool, out: &mut Vec<String>) {
        if dir.join("README.md").is_file() {
            out.push(rel.to_string());
        }
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let child = format!("{rel}/{name}");
                if deep {
                    walk(&path, &child, true, out);
                } else if path.join("README.md").is_file() {
                    out.push(child);
                }
            }
        }
    }
    let mut out = Vec::new();
    if root().join("README.md").is_file() {
        out.push(String::new());
    }
    walk(&root().join("lessons"), "lessons", false, &mut out);
    let exercises = root().join("exercises");
    if exercises.is_dir() {
        walk(&exercises, "exercises", true, &mut out);
    }
    out.sort();
    out
}

/// One fenced block: its opening line (```text, ```python) and its content, with the line
/// number of the opening fence.
#[derive(Debug, PartialEq)]
struct Block {
    line: usize,
    fence: String,
    body: String,
}

fn code_blocks(page: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in page.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.as_mut() {
            None if trimmed.starts_with("```") => {
                open = Some(Block {
                    line: i + 1,
                    fence: trimmed.to_string(),
                    body: String::new(),
                });
            }
            None => {}
            Some(_) if trimmed.starts_with("```") => blocks.extend(open.take()),
            Some(block) => {
                block.body.push_str(line);
                block.body.push('\n');
            }
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    blocks
}

/// The page without its fenced blocks.
fn prose(page: &str) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if !in_block {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Prose without inline code, link targets and bare URLs: the words a reader reads.
fn words(page: &str) -> String {
    let text = prose(page);
    let mut out = String::new();
    let mut rest = text.as_str();
    loop {
        // The earliest of: an inline code span, a link target, a URL.
        let code = rest.find('`');
        let link = rest.find("](");
        let url = rest.find("http");
        let next = [code, link, url].into_iter().flatten().min();
        let Some(at) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let skip = if Some(at) == code {
            // `code`: skip to the closing backtick (a lone backtick skips itself).
            after[1..].find('`').map_or(1, |end| end + 2)
        } else if Some(at) == link {
            after.find(')').map_or(2, |end| end + 1)
        } else {
            after
                .find(|c: char| c.is_whitespace() || c == ')' || c == '>')
                .unwrap_or(after.len())
        };
        rest = &after[skip..];
    }
    out
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

/// (heading level, line number) of every ATX heading outside code.
fn headings(page: &str) -> Vec<usize> {
    prose(page)
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| line.chars().take_while(|&c| c == '#').count())
        .collect()
}

/// The number of rows of each table, in order (header and separator rows included).
fn tables(page: &str) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut rows = 0;
    for line in prose(page).lines() {
        if line.trim_start().starts_with('|') {
            rows += 1;
        } else if rows > 0 {
            sizes.push(rows);
            rows = 0;
        }
    }
    if rows > 0 {
        sizes.push(rows);
    }
    sizes
}

/// The targets of the page's pictures (`![...](target)`), in order.
fn pictures(page: &str) -> Vec<String> {
    let text = prose(page);
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("![") {
        rest = &rest[at + 2..];
        if let Some(open) = rest.find("](") {
            let target = &rest[open + 2..];
            if let Some(close) = target.find(')') {
                out.push(target[..close].to_string());
            }
        }
    }
    out
}

/// The first cells of the rows of the table under the heading `title`.
fn glossary_terms(page: &str, title: &str) -> Vec<String> {
    let text = prose(page);
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with(title))
        .unwrap_or_else(|| panic!("no '## {title}' section"));
    section
        .lines()
        .filter(|line| line.starts_with('|'))
        .skip(2) // the header row and the |---| row
        .map(|row| row.split('|').nth(1).unwrap_or("").trim().to_string())
        .collect()
}

#[test]
fn every_listed_page_has_a_chinese_twin_and_each_links_the_other() {
    for dir in TWINNED {
        let (en, zh) = (english(dir), chinese(dir));
        assert!(en.is_file(), "{} is listed but missing", en.display());
        assert!(
            zh.is_file(),
            "{} has no Chinese twin {}",
            en.display(),
            zh.display()
        );
        let first = |path: &Path| read(path).lines().next().unwrap_or("").to_string();
        assert_eq!(
            first(&en),
            SWITCH_EN,
            "{}: the first line is the language switch",
            en.display()
        );
        assert_eq!(
            first(&zh),
            SWITCH_ZH,
            "{}: the first line is the language switch",
            zh.display()
        );
    }
}

#[test]
fn every_readme_is_twinned_or_listed_as_not_yet_translated() {
    for dir in readme_folders() {
        let twinned = TWINNED.contains(&dir.as_str());
        let pending = NOT_YET_TRANSLATED.iter().any(|p| dir.starts_with(p));
        assert!(
            twinned || pending,
            "{}/README.md: write its README.zh-CN.md and add \"{dir}\" to TWINNED in tests/docs.rs",
            dir
        );
        if chinese(&dir).is_file() {
            assert!(
                twinned,
                "{}/README.zh-CN.md exists: add \"{dir}\" to TWINNED in tests/docs.rs",
                dir
            );
        }
    }
}

#[test]
fn code_blocks_are_identical_in_both_languages_and_in_the_same_order() {
    for (name, en, zh) in pairs() {
        let (en, zh) = (code_blocks(&en), code_blocks(&zh));
        for (i, (a, b)) in en.iter().zip(&zh).enumerate() {
            assert!(
                a.fence == b.fence && a.body == b.body,
                "{name}: code block {} differs: README.md line {}, README.zh-CN.md line {}\n\
                 --- English:\n{}\n{}--- Chinese:\n{}\n{}",
                i + 1,
                a.line,
                b.line,
                a.fence,
                a.body,
                b.fence,
                b.body
            );
        }
        assert_eq!(
            en.len(),
            zh.len(),
            "{name}: {} code blocks in English, {} in Chinese",
            en.len(),
            zh.len()
        );
    }
}

#[test]
fn both_languages_have_the_same_sections_tables_and_pictures() {
    for (name, en, zh) in pairs() {
        assert_eq!(
            headings(&en),
            headings(&zh),
            "{name}: the headings (their levels, in order) differ"
        );
        assert_eq!(
            tables(&en),
            tables(&zh),
            "{name}: the tables (rows per table, in order) differ"
        );
        assert_eq!(pictures(&en), pictures(&zh), "{name}: the pictures differ");
    }
}

#[test]
fn chinese_pages_are_mostly_chinese() {
    for (name, _, zh) in pairs() {
        let text = words(&zh);
        let han = text.chars().filter(|&c| is_han(c)).count();
        let all = text.chars().filter(|c| c.is_alphanumeric()).count();
        let share = han as f64 / all.max(1) as f64;
        eprintln!(
            "{name}: {han} of {all} letters are Chinese ({:.0}%)",
            share * 100.0
        );
        assert!(
            share >= MIN_HAN_SHARE,
            "{name}: only {han} of {all} letters of the Chinese page's prose are Chinese ({:.0}%)",
            share * 100.0
        );
    }
}

#[test]
fn the_glossary_holds_the_notes_terms_in_both_languages() {
    let en = glossary_terms(&read(&english("")), "Glossary");
    let zh = glossary_terms(&read(&chinese("")), "术语表");
    assert_eq!(
        en, zh,
        "the first column (the notes' words) of README.md's glossary and README.zh-CN.md's differ"
    );
    for term in GLOSSARY_TERMS {
        assert!(
            zh.iter().any(|cell| cell.contains(term)),
            "the glossary has no row for {term}"
        );
    }
}

#[test]
fn every_page_uses_the_glossary_words() {
    let mut pages: Vec<PathBuf> = readme_folders().iter().map(|d| english(d)).collect();
    pages.extend(TWINNED.iter().map(|d| chinese(d)));
    for page in pages {
        let text = read(&page);
        // The glossary itself may name the words it replaces (a learner meets 粘包 on the web).
        let text = match text
            .find("\n## Glossary")
            .or_else(|| text.find("\n## 术语表"))
        {
            Some(start) => {
                let end = text[start + 1..]
                    .find("\n## ")
                    .map_or(text.len(), |e| start + 1 + e);
                format!("{}{}", &text[..start], &text[end..])
            }
            None => text,
        };
        for (wrong, right) in NOT_OUR_WORDS {
            if let Some(line) = text.lines().position(|l| l.contains(wrong)) {
                panic!(
                    "{} line {}: write {right}, not {wrong} (the glossary's word)",
                    page.display(),
                    line + 1
                );
            }
        }
    }
}

#[test]
fn the_checks_see_what_they_are_meant_to_see() {
    // The helpers above, on a page written for the purpose.
    let page = "# T\n\nSee `code 粘包` and [x](http://a.b/c) 中文 abc\n\n```text\nls\n```\n\n\
                | a | b |\n| --- | --- |\n| 黏包 | x |\n\n![pic](p.svg)\n## G\n";
    assert_eq!(
        code_blocks(page),
        vec![Block {
            line: 5,
            fence: "```text".into(),
            body: "ls\n".into()
        }]
    );
    let w = words(page);
    assert!(!w.contains("粘包") && !w.contains("http") && w.contains("中文 abc"));
    assert_eq!(headings(page), vec![1, 2]);
    assert_eq!(tables(page), vec![3]);
    assert_eq!(pictures(page), vec!["p.svg".to_string()]);
    assert_eq!(
        glossary_terms("# T\n\n## G\n\n| a |\n| - |\n| 黏包 |\n", "G"),
        vec!["黏包"]
    );
}

// ---------------------------------------------------------------------------------------------
// Listings: the real lines of the code, shown where the learner reads.

/// A ```rust block in a README is a listing of real lines, never code written for the page:
/// its first line names where they are (`// server.rs:214`: the file, relative to the README's
/// folder, and the line the listing starts at), and every line after it is that file's next
/// line, in order. A line `// …` stands for lines left out; a listing may be indented less
/// than the file, by the same amount on every line, and may show the code of a doc comment
/// (`//! ` or `/// ` dropped from every line: a doc test the compiler checks). And a link to a
/// line of code,
/// [`recv_request`](server.rs#L487), must land on the line that defines what the link names
/// (`fn recv_request`; for `Conn::get`, `fn get`). So a page can show a step's code without going stale: change the code, and this
/// test names the listing to change. When only the line numbers moved,
/// `UPDATE_LISTINGS=1 cargo test --test docs listings` writes the new numbers into both pages.
#[test]
fn listings_and_line_links_show_the_code_as_it_is() {
    let update = std::env::var_os("UPDATE_LISTINGS").is_some_and(|v| v == "1");
    let mut wrong = Vec::new();
    for dir in TWINNED {
        let (en_path, zh_path) = (english(dir), chinese(dir));
        // (old, new) texts: the listings' first lines, in the order of the page (the same in
        // both pages, whose code blocks are identical); then each page's links.
        let mut listing_fixes: Vec<(String, String)> = Vec::new();
        for block in code_blocks(&read(&en_path)) {
            if block.fence != "```rust" {
                continue;
            }
            if let Err(problem) = check_listing(dir, &block.body, &mut listing_fixes) {
                wrong.push(format!("{}:{}: {problem}", en_path.display(), block.line));
            }
        }
        for page in [&en_path, &zh_path] {
            let mut link_fixes = Vec::new();
            for (line, text, file, at) in line_links(&read(page)) {
                if let Err(problem) = check_line_link(dir, &text, &file, at, &mut link_fixes) {
                    wrong.push(format!("{}:{line}: {problem}", page.display()));
                }
            }
            if update && !(listing_fixes.is_empty() && link_fixes.is_empty()) {
                let mut text = apply_in_order(&read(page), &listing_fixes);
                for fix in &link_fixes {
                    text = apply_in_order(&text, std::slice::from_ref(fix));
                }
                fs::write(page, text).unwrap();
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "listings or line links that do not show the code as it is:\n{}",
        wrong.join("\n")
    );
}

/// `text` with each `old` replaced by its `new`, each at its first place after the one before.
fn apply_in_order(text: &str, fixes: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    for (old, new) in fixes {
        if let Some(at) = rest.find(old.as_str()) {
            out.push_str(&rest[..at]);
            out.push_str(new);
            rest = &rest[at + old.len()..];
        }
    }
    out + rest
}

/// `path:line` from a listing's first line, `// path:line`.
fn listing_location(header: &str) -> Option<(&str, usize)> {
    let (path, line) = header.strip_prefix("// ")?.rsplit_once(':')?;
    let line = line.parse().ok().filter(|&n| n > 0)?;
    path.ends_with(".rs").then_some((path, line))
}

fn source_lines(dir: &str, file: &str) -> Result<Vec<String>, String> {
    let path = root().join(dir).join(file);
    fs::read_to_string(&path)
        .map(|text| {
            text.replace("\r\n", "\n")
                .lines()
                .map(str::to_string)
                .collect()
        })
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Whether the listing's lines are the file's from index `start` on (see the test above).
/// `Err((i, j))`: the listing's line `i` (0 = the first after the header) is not the file's line
/// at index `j` (or anywhere after it, past a `// …`).
fn listing_matches(
    listing: &[&str],
    source: &[String],
    start: usize,
) -> Result<(), (usize, usize)> {
    const SKIP: &str = "// …";
    // What the listing drops from the front of every file line, once known: some spaces of
    // indentation, or a doc comment's `//! ` or `/// ` (with the spaces before it).
    let mut shift: Option<String> = None;
    let same = |shown: &str, real: &str, shift: &mut Option<String>| -> bool {
        let (shown, real) = (shown.trim_end(), real.trim_end());
        if shown.is_empty() {
            // A blank line of a doc comment is the bare `//!` or `///`.
            let bare = real.trim_start();
            return match shift.as_deref().map(str::trim) {
                Some(marker @ ("//!" | "///")) => bare == marker,
                _ => real.is_empty(),
            };
        }
        let Some(extra) = real.strip_suffix(shown) else {
            return false;
        };
        let marker = extra.trim_start_matches(' ');
        let allowed = matches!(marker, "" | "//! " | "/// ");
        let ok = allowed && shift.as_deref().map_or(true, |s| s == extra);
        if ok {
            *shift = Some(extra.to_string());
        }
        ok
    };
    let mut at = start;
    let mut skipping = false;
    for (i, shown) in listing.iter().enumerate() {
        if shown.trim() == SKIP {
            skipping = true;
            continue;
        }
        let found = if skipping {
            (at..source.len()).find(|&j| same(shown, &source[j], &mut shift.clone()))
        } else {
            Some(at).filter(|&j| j < source.len())
        };
        match found {
            Some(j) if same(shown, &source[j], &mut shift) => at = j + 1,
            _ => return Err((i, at)),
        }
        skipping = false;
    }
    Ok(())
}

fn check_listing(dir: &str, body: &str, fixes: &mut Vec<(String, String)>) -> Result<(), String> {
    let mut lines = body.lines();
    let header = lines.next().unwrap_or("");
    let Some((file, line)) = listing_location(header) else {
        return Err(format!(
            "a ```rust block must start with `// FILE.rs:LINE`, the place its lines are from; \
             it starts with {header:?}"
        ));
    };
    let listing: Vec<&str> = lines.collect();
    let source = source_lines(dir, file)?;
    let Err((i, at)) = listing_matches(&listing, &source, line - 1) else {
        return Ok(());
    };
    let starts: Vec<usize> = (0..source.len())
        .filter(|&s| listing_matches(&listing, &source, s).is_ok())
        .collect();
    if let [now] = starts[..] {
        fixes.push((format!("{header}\n"), format!("// {file}:{}\n", now + 1)));
        return Err(format!(
            "the listing of {file}:{line} is now at {file}:{} (UPDATE_LISTINGS=1 writes it)",
            now + 1
        ));
    }
    let real = source
        .get(at)
        .map_or("(the end of the file)", String::as_str);
    Err(format!(
        "the listing of {file}:{line} is not the file's code: it shows {:?} where {file}:{} \
         is {real:?}; write the lines as {file} has them now",
        listing[i],
        at + 1
    ))
}

/// Every link to a line of a Rust file in the page's prose, `[text](file.rs#L12)`:
/// (line of the page, text without backticks, file, line of the file).
fn line_links(page: &str) -> Vec<(usize, String, String, usize)> {
    let mut links = Vec::new();
    let mut in_block = false;
    for (n, line) in page.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        }
        if in_block {
            continue;
        }
        let mut rest = line;
        while let Some(open) = rest.find("](") {
            let target = &rest[open + 2..];
            let Some(close) = target.find(')') else { break };
            let text_start = rest[..open].rfind('[').map_or(0, |s| s + 1);
            let text = rest[text_start..open].replace('`', "");
            if let Some((file, at)) = target[..close].split_once("#L") {
                if let (true, Ok(at)) = (file.ends_with(".rs"), at.parse::<usize>()) {
                    links.push((n + 1, text, file.to_string(), at));
                }
            }
            rest = &target[close..];
        }
    }
    links
}

fn check_line_link(
    dir: &str,
    text: &str,
    file: &str,
    at: usize,
    fixes: &mut Vec<(String, String)>,
) -> Result<(), String> {
    let source = source_lines(dir, file)?;
    // `Conn::get()` is found as `get`, on `fn get(&mut self)`; `log!` as `log`.
    let name = text.trim_end_matches("()").trim_end_matches('!');
    let name = name.rsplit("::").next().unwrap_or(name);
    // The line that defines it: `fn NAME`, `struct NAME`, …, `macro_rules! NAME`.
    let defines = |l: &String| {
        [
            "fn ",
            "struct ",
            "enum ",
            "const ",
            "static ",
            "type ",
            "macro_rules! ",
        ]
        .iter()
        .any(|kind| {
            l.split(kind).skip(1).any(|after| {
                after.starts_with(name)
                    && !after[name.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            })
        })
    };
    if at >= 1 && source.get(at - 1).is_some_and(defines) {
        return Ok(());
    }
    let found: Vec<usize> = (0..source.len()).filter(|&i| defines(&source[i])).collect();
    if let [now] = found[..] {
        let old = format!("]({file}#L{at})");
        let new = format!("]({file}#L{})", now + 1);
        fixes.push((format!("{text}`{old}"), format!("{text}`{new}")));
        return Err(format!(
            "[{text}]({file}#L{at}): {name} is now at line {} (UPDATE_LISTINGS=1 writes it)",
            now + 1
        ));
    }
    Err(format!(
        "[{text}]({file}#L{at}): line {at} of {file} does not define {name:?}"
    ))
}

#[test]
fn a_listing_matches_only_the_lines_it_names() {
    let source: Vec<String> = [
        "fn f() {",
        "    let a = 1;",
        "    let b = 2;",
        "    a + b",
        "}",
    ]
    .map(String::from)
    .to_vec();
    // The lines from the one named, less indented by the same amount on every line or not.
    assert_eq!(
        listing_matches(&["fn f() {", "    let a = 1;"], &source, 0),
        Ok(())
    );
    assert_eq!(
        listing_matches(&["let a = 1;", "let b = 2;"], &source, 1),
        Ok(())
    );
    // `// …` leaves lines out.
    assert_eq!(
        listing_matches(&["fn f() {", "    // …", "    a + b"], &source, 0),
        Ok(())
    );
    // Another start, a changed line, uneven indentation, lines out of order: refused, naming
    // the listing's first wrong line and where in the file it was looked for.
    assert_eq!(
        listing_matches(&["    let a = 1;"], &source, 0),
        Err((0, 0))
    );
    assert_eq!(
        listing_matches(&["fn f() {", "    let a = 3;"], &source, 0),
        Err((1, 1))
    );
    assert_eq!(
        listing_matches(&["let a = 1;", "    let b = 2;"], &source, 1),
        Err((1, 2))
    );
    assert_eq!(
        listing_matches(&["    a + b", "// …", "    let a = 1;"], &source, 3),
        Err((2, 4))
    );
    assert_eq!(
        listing_location("// ../04_header/protocol.rs:107"),
        Some(("../04_header/protocol.rs", 107))
    );
    assert_eq!(listing_location("// a note"), None);
    assert_eq!(
        line_links(
            "See [`read_len`](protocol.rs#L107) and [a page](../x.md).\n```\n[`x`](a.rs#L1)\n```\n"
        ),
        vec![(1, "read_len".to_string(), "protocol.rs".to_string(), 107)]
    );
}
