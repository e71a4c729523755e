//! Agents' formatting and the safe-link rule, hostile input included.

use proptest::prelude::*;

use crate::format::{Block, Inline, Segment, is_plain, segments};
use crate::letters::{core_tables, no_tables};

/// An agent's line by core's tables.
fn blocks(text: &str) -> Vec<Block> {
    crate::format::blocks(text, core_tables)
}

fn text(s: &str) -> Inline {
    Inline::Text(s.into())
}

fn paragraph(runs: Vec<Inline>) -> Vec<Block> {
    vec![Block::Paragraph(runs)]
}

/// Everything a reader sees, in order.
fn shown(blocks: &[Block]) -> String {
    fn runs(out: &mut String, list: &[Inline]) {
        for run in list {
            match run {
                Inline::Text(t) | Inline::Code(t) => out.push_str(t),
                Inline::Strong(inner) | Inline::Emphasis(inner) => runs(out, inner),
                Inline::Link { text, .. } => out.push_str(text),
                Inline::Break => out.push('\n'),
            }
        }
    }
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Paragraph(inline) => runs(&mut out, inline),
            Block::Bullets(items) | Block::Numbered { items, .. } => {
                for item in items {
                    runs(&mut out, item);
                }
            }
        }
    }
    out
}

#[test]
fn bold_italic_code_and_links() {
    assert_eq!(
        blocks("Your **order** is *on its way*: `A-17`, see [tracking](https://t.example/17)"),
        paragraph(vec![
            text("Your "),
            Inline::Strong(vec![text("order")]),
            text(" is "),
            Inline::Emphasis(vec![text("on its way")]),
            text(": "),
            Inline::Code("A-17".into()),
            text(", see "),
            Inline::Link { text: "tracking".into(), url: "https://t.example/17".into() },
        ])
    );
    assert_eq!(
        blocks("_soon_ and https://x.example/a."),
        paragraph(vec![
            Inline::Emphasis(vec![text("soon")]),
            text(" and "),
            Inline::Link { text: "https://x.example/a".into(), url: "https://x.example/a".into() },
            text("."),
        ])
    );
}

#[test]
fn lists_and_line_breaks() {
    let line = "Steps:\nOpen the app\n\n1. Sign in\n2. Go to **Orders**\n\n- one\n* two\n• three";
    assert_eq!(
        blocks(line),
        vec![
            Block::Paragraph(vec![text("Steps:"), Inline::Break, text("Open the app")]),
            Block::Numbered {
                start: 1,
                items: vec![
                    vec![text("Sign in")],
                    vec![text("Go to "), Inline::Strong(vec![text("Orders")])],
                ],
            },
            Block::Bullets(vec![vec![text("one")], vec![text("two")], vec![text("three")]]),
        ]
    );
    assert_eq!(
        blocks("3) third"),
        vec![Block::Numbered { start: 3, items: vec![vec![text("third")]] }]
    );
    assert_eq!(blocks("2024. was a year"), paragraph(vec![text("2024. was a year")]));
}

#[test]
fn what_is_not_markup_stays_as_written() {
    for plain in [
        "snake_case_name and 2 * 3 * 4",
        "a ** b ** c",
        "*never closed",
        "`",
        "[no url]",
        "[label](javascript:alert(1))",
        "[label](data:text/html,x)",
        "**unclosed",
    ] {
        assert_eq!(shown(&blocks(plain)), plain, "{plain}");
        assert!(
            !format!("{:?}", blocks(plain)).contains("Link"),
            "no link in {plain:?}: {:?}",
            blocks(plain)
        );
    }
}

#[test]
fn hostile_lines_stay_text() {
    let html = "<img src=x onerror=alert(1)><script>alert(2)</script>";
    assert_eq!(blocks(html), paragraph(vec![text(html)]));
    // Bidirectional overrides would make the rest of the line read in another order.
    let spoof = "pay at \u{202e}moc.knab//:sptth\u{202c} now";
    assert_eq!(shown(&blocks(spoof)), "pay at moc.knab//:sptth now");
    // A URL that holds one is text, not a link to what it reads as without it.
    let hidden = "see https://example.com/\u{202e}gpj.exe";
    assert_eq!(blocks(hidden), paragraph(vec![text("see https://example.com/gpj.exe")]));
    let nested = "***a* **b _c **d** e_ f** g*";
    let deep = blocks(&format!("{}x{}", "*".repeat(40), "*".repeat(40)));
    assert!(!shown(&deep).is_empty());
    assert!(!shown(&blocks(nested)).is_empty());
    // 10 KB of asterisks, of underscores, of brackets and of backticks: linear, and no
    // character is lost except as delimiters.
    for c in ['*', '_', '[', '`'] {
        let flood = c.to_string().repeat(10_000);
        let out = blocks(&flood);
        assert!(shown(&out).chars().all(|s| s == c), "{c}");
    }
}

proptest! {
    #[test]
    fn any_line_parses_and_loses_no_letter(line in "[a-z *_`\\[\\]()\n\\-1.:/]{0,200}") {
        let out = blocks(&line);
        let letters = |s: &str| s.chars().filter(char::is_ascii_lowercase).collect::<String>();
        // Only a link's URL (hidden behind its text) may take letters out of sight.
        if !format!("{out:?}").contains("Link") {
            prop_assert_eq!(letters(&shown(&out)), letters(&line));
        }
    }
}

proptest! {
    /// A line the widget shows without loading the formatter is exactly what the
    /// formatter makes of it: one paragraph of its text and links.
    #[test]
    fn a_plain_line_is_what_the_formatter_makes_of_it(
        line in "([a-z .,:/()\\-•1*_`\\[\\]\n\r\u{202e}é]|https://x\\.y/z|http://a\\.b|\\[a\\]\\(https://x\\.y\\)|- |1\\. ){0,24}"
    ) {
        if is_plain(&line) {
            let runs = segments(&line)
                .into_iter()
                .map(|s| match s {
                    Segment::Text(t) => Inline::Text(t),
                    Segment::Link(url) => Inline::Link { text: url.clone(), url },
                })
                .collect();
            prop_assert_eq!(blocks(&line), paragraph(runs));
        }
    }
}

#[test]
fn what_the_formatter_reads_is_not_plain() {
    for line in [
        "a *b*",
        "a_b",
        "`x`",
        "[a](https://b.c)",
        "a\nb",
        "- item",
        "1. item",
        "a\u{202e}b",
        " ",
        "",
    ] {
        assert!(!is_plain(line), "{line:?}");
    }
    for line in ["see https://x.y/z, then call 2024. ok", "e-mail me", "é"] {
        assert!(is_plain(line), "{line:?}");
    }
}

#[test]
fn underscores_meet_letters_by_the_platforms_tables() {
    // `_` inside a word is text; beyond ASCII, what is a letter is the platform's to say.
    assert_eq!(blocks("ï_é_ï"), paragraph(vec![text("ï_é_ï")]));
    let by_none = crate::format::blocks("ï_é_ï", no_tables);
    assert_eq!(by_none, paragraph(vec![text("ï"), Inline::Emphasis(vec![text("é")]), text("ï")]));
}
