//! LiveCodeBench's output comparisons, done in the parent (expected outputs never enter the
//! sandbox):
//!
//! - stdin tests: both texts stripped, split on `\n`, each line stripped; the line counts must
//!   match; a line matches when equal, or when both parse as whitespace-separated lists of
//!   Python `Decimal`s that are equal element-wise (`1.0` equals `1.00`, `1e3` equals `1000`);
//!
//! Functional tests' return values are compared in the `value` module.

/// Python's `str.isspace`: Unicode's White_Space plus the four information separators
/// (U+001C to U+001F), which `str.split()` and `str.strip()` also treat as whitespace.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The first digit (zero) of each run of ten Unicode decimal digits (category Nd), as
/// Python 3.11's `unicodedata` (Unicode 14.0) lists them: `Decimal` reads any of them as its
/// ASCII digit (`Decimal("１２") == 12`).
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// A Unicode decimal digit as its ASCII digit; anything else unchanged.
fn ascii_digit(c: char) -> char {
    let u = c as u32;
    match DECIMAL_ZEROS.iter().rev().find(|&&z| z <= u) {
        Some(&z) if u - z < 10 => char::from(b'0' + (u - z) as u8),
        _ => c,
    }
}

/// Whether `got` matches `expected` under LiveCodeBench's stdout rule.
pub fn stdout_matches(got: &str, expected: &str) -> bool {
    let lines = |s: &str| -> Vec<String> {
        s.trim_matches(py_space)
            .split('\n')
            .map(|l| l.trim_matches(py_space).to_string())
            .collect()
    };
    let (g, e) = (lines(got), lines(expected));
    g.len() == e.len()
        && g.iter().zip(&e).all(|(a, b)| {
            a == b
                || match (decimals(a), decimals(b)) {
                    (Some(x), Some(y)) => x == y && !x.contains(&Dec::NaN),
                    _ => false,
                }
        })
}

/// A Python `Decimal` reduced to a canonical form for equality: sign, digits without leading or
/// trailing zeros, exponent. NaN never equals anything (as in Python).
#[derive(Debug, PartialEq)]
enum Dec {
    Zero,
    Finite { neg: bool, digits: String, exp: i64 },
    Inf { neg: bool },
    NaN,
}

fn decimals(line: &str) -> Option<Vec<Dec>> {
    line.split(py_space)
        .filter(|t| !t.is_empty())
        .map(|t| parse_decimal(&t.chars().map(ascii_digit).collect::<String>()))
        .collect()
}

/// Parses what Python's `Decimal(str)` accepts (underscores between digits included).
fn parse_decimal(token: &str) -> Option<Dec> {
    let (neg, rest) = match token.as_bytes().first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    let lower = rest.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "infinity" => return Some(Dec::Inf { neg }),
        "nan" | "snan" => return Some(Dec::NaN),
        _ => {}
    }
    if lower.starts_with("nan") && lower[3..].chars().all(|c| c.is_ascii_digit()) {
        return Some(Dec::NaN);
    }
    let (mantissa, exp) = match lower.find('e') {
        Some(i) => {
            let e = lower[i + 1..].replace('_', "");
            (&lower[..i], e.parse::<i64>().ok()?)
        }
        None => (lower.as_str(), 0),
    };
    if mantissa.starts_with('_') || mantissa.ends_with('_') || mantissa.contains("__") {
        return None;
    }
    let mantissa = mantissa.replace('_', "");
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa.as_str(), ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mut digits = format!("{int}{frac}");
    let mut exp = exp - frac.len() as i64;
    let trimmed = digits.trim_start_matches('0').to_string();
    digits = trimmed;
    if digits.is_empty() {
        return Some(Dec::Zero);
    }
    while digits.ends_with('0') {
        digits.pop();
        exp += 1;
    }
    Some(Dec::Finite { neg, digits, exp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_stripped_and_counted() {
        assert!(stdout_matches("1 2\n3  \n\n", "1 2\n3"));
        assert!(stdout_matches("  a\nb  ", "a\nb"));
        assert!(!stdout_matches("1\n2", "1\n2\n3"));
        assert!(
            !stdout_matches("a b", "a  b"),
            "inner spacing of text matters"
        );
        assert!(!stdout_matches("yes", "YES"));
    }

    #[test]
    fn numeric_fallback_is_exact_decimal_equality() {
        assert!(stdout_matches("1.0 2.50", "1 2.5"));
        assert!(stdout_matches("1e3", "1000"));
        assert!(stdout_matches("-0", "0.000"));
        assert!(
            stdout_matches("1_000", "1000"),
            "Decimal accepts underscores"
        );
        assert!(
            !stdout_matches("0.30000000000000004", "0.3"),
            "no tolerance in LCB"
        );
        assert!(!stdout_matches("1 2", "1 3"));
        // Equal text matches before any parsing; as Decimals, NaN equals nothing.
        assert!(stdout_matches("nan", "nan"));
        assert!(!stdout_matches("nan", "NaN"));
        assert!(stdout_matches("Infinity", "inf"));
        assert!(
            !stdout_matches("1 x", "1.0 x"),
            "a non-number spoils the whole line"
        );
        // Decimal reads Unicode digits (Python: Decimal("１２３") == Decimal("123")) and
        // str.split() splits on U+001F.
        assert!(stdout_matches("\u{ff11}\u{ff12}\u{ff13}", "123"));
        assert!(stdout_matches("\u{0661}.5", "1.50"));
        assert!(stdout_matches("1\u{1f}2", "1 2.0"));
        assert!(!stdout_matches("\u{ff11}\u{ff12}", "13"));
    }
}
