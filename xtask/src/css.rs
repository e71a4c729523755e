//! The widget's styles compacted once, by the release build (`widget.rs`; also `cargo
//! xtask compact-css FILE`, in place), so the relay serves them as built and never
//! compacts on a render of `/widget.js`.

use anyhow::Context;

/// Compacts `file` in place.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let [file] = args else { anyhow::bail!("usage: cargo xtask compact-css FILE") };
    let css = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    std::fs::write(file, compact(&css)).with_context(|| format!("writing {file}"))
}

/// The styles without comments and with whitespace collapsed (a quarter off the loader,
/// gzipped): strings are kept as they are, and whitespace is dropped only next to `{`, `}`,
/// `;` and `,`, where it never means anything (next to `:` or `-` it can).
pub(crate) fn compact(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut chars = css.chars().peekable();
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                pending_space = true;
            }
            c if c.is_whitespace() => pending_space = true,
            '"' | '\'' => {
                if std::mem::take(&mut pending_space) && !out.is_empty() {
                    out.push(' ');
                }
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == c {
                        break;
                    }
                }
            }
            '{' | '}' | ';' | ',' => {
                pending_space = false;
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            c => {
                let joins = out.ends_with(['{', '}', ';', ',']);
                if std::mem::take(&mut pending_space) && !out.is_empty() && !joins {
                    out.push(' ');
                }
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::compact;

    /// The widget's styles: every property given by `light-dark()` has a plain colour in the
    /// `@supports not` block, so engines without it still paint the panel (README: Browsers).
    #[test]
    fn every_light_dark_colour_has_a_fallback() {
        let css = include_str!("../../frontend/src/widget.css");
        let marker = "@supports not (color: light-dark(";
        let at = css.find(marker).expect("widget.css has the light-dark() fallback block");
        let (styles, fallback) = css.split_at(at);
        let end = fallback.find("\n}\n").expect("the block ends");
        let fallback = &fallback[marker.len()..end];
        let declared = |text: &str, value: &str| -> Vec<String> {
            text.split([';', '{'])
                .filter_map(|d| d.split_once(':'))
                .filter(|(_, v)| v.trim_start().starts_with(value))
                .map(|(name, _)| name.trim().to_owned())
                .collect()
        };
        let themed = declared(styles, "light-dark(");
        assert!(themed.len() >= 8, "found {themed:?}");
        let plain = declared(fallback, "");
        for name in &themed {
            assert!(plain.contains(name), "{name} has no fallback without light-dark()");
        }
        assert!(!fallback.contains("light-dark("));
    }

    #[test]
    fn compacted_styles_mean_the_same() {
        let css =
            "/* why */\n.a :focus, .b  >  .c {\n  content: \"●  \"; width: calc(1px - 2px);\n}\n";
        assert_eq!(compact(css), r#".a :focus,.b > .c{content: "●  ";width: calc(1px - 2px);}"#);
    }
}
