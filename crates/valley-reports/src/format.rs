//! How numbers and text appear in a report: metrics rounded to 3 decimals (so float noise below
//! 0.0005 never changes a report or its snapshot), counts as integers, sizes with the base marked,
//! and table cells escaped for Markdown.

/// A metric value to 3 decimals; never `-0.000`; non-finite values spelled out.
pub fn round3(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{x:.3}");
    if s == "-0.000" {
        "0.000".into()
    } else {
        s
    }
}

/// A signed difference to 3 decimals (`+0.012`, `-0.030`, `0.000`).
pub fn signed3(x: f64) -> String {
    let s = round3(x);
    if s.starts_with('-') || s == "0.000" || !x.is_finite() {
        s
    } else {
        format!("+{s}")
    }
}

/// A count-like mean (tokens, steps) rounded to an integer.
pub fn integer(x: f64) -> String {
    if x.is_finite() {
        format!("{}", x.round() as i64)
    } else {
        round3(x)
    }
}

/// A training size as the tables print it: `0 (base)` for the base model.
pub fn size_label(size: u64) -> String {
    if size == 0 {
        "0 (base)".into()
    } else {
        size.to_string()
    }
}

/// Text made safe for one Markdown table cell: `|` escaped, line breaks folded, at most 200
/// characters (the rest marked with `…`).
pub fn cell_text(text: &str) -> String {
    let folded: String = text
        .split(['\n', '\r'])
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ⏎ ");
    let mut out: String = folded.chars().take(200).collect();
    if folded.chars().count() > 200 {
        out.push('…');
    }
    out.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_hides_float_noise_and_negative_zero() {
        assert_eq!(round3(0.1 + 0.2), "0.300");
        assert_eq!(round3(-0.0001), "0.000");
        assert_eq!(round3(f64::NAN), "NaN");
        assert_eq!(signed3(0.0123), "+0.012");
        assert_eq!(signed3(-0.03), "-0.030");
        assert_eq!(signed3(0.0), "0.000");
        assert_eq!(integer(1234.5), "1235");
    }

    #[test]
    fn cell_text_is_one_safe_line() {
        assert_eq!(cell_text("a | b\nc\n"), "a \\| b ⏎ c");
        let long = "x".repeat(250);
        assert_eq!(cell_text(&long).chars().count(), 201);
    }
}
