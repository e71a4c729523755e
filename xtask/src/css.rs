//! `cargo xtask compact-css FILE`: the widget's styles compacted in place, once, by the
//! release build (trunk's post_build hook, frontend/minify.sh), so the relay serves them
//! as built and never compacts on a render of `/widget.js`.

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

    #[test]
    fn compacted_styles_mean_the_same() {
        let css =
            "/* why */\n.a :focus, .b  >  .c {\n  content: \"●  \"; width: calc(1px - 2px);\n}\n";
        assert_eq!(compact(css), r#".a :focus,.b > .c{content: "●  ";width: calc(1px - 2px);}"#);
    }
}
