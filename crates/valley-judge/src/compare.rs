//! LiveCodeBench's output comparisons, done in the parent (expected outputs never enter the
//! sandbox):
//!
//! - stdin tests: both texts stripped, split on `\n`, each line stripped; the line counts must
//!   match; a line matches when equal, or when both parse as whitespace-separated lists of
//!   Python `Decimal`s that are equal element-wise (`1.0` equals `1.00`, `1e3` equals `1000`);
//! - functional tests: the JSON of the return value equals the expected JSON under Python's `==`
//!   (`1 == 1.0 == True`, dict key order ignored; tuples were turned into lists by the driver).

use serde_json::Value;

/// Whether `got` matches `expected` under LiveCodeBench's stdout rule.
pub fn stdout_matches(got: &str, expected: &str) -> bool {
    let lines =
        |s: &str| -> Vec<String> { s.trim().split('\n').map(|l| l.trim().to_string()).collect() };
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
    line.split_whitespace().map(parse_decimal).collect()
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

/// Python `==` between two JSON values.
pub fn python_eq(a: &Value, b: &Value) -> bool {
    use Value::{Array, Bool, Null, Number, Object, String};
    let num = |v: &Value| -> Option<f64> {
        match v {
            Bool(x) => Some(f64::from(u8::from(*x))),
            Number(n) => n.as_f64(),
            _ => None,
        }
    };
    match (a, b) {
        (Null, Null) => true,
        (String(x), String(y)) => x == y,
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| python_eq(p, q)),
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| python_eq(v, w)))
        }
        (Number(x), Number(y)) if x.is_i64() && y.is_i64() => x.as_i64() == y.as_i64(),
        (Number(x), Number(y)) if x.is_u64() && y.is_u64() => x.as_u64() == y.as_u64(),
        (Bool(_) | Number(_), Bool(_) | Number(_)) => num(a) == num(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    }

    #[test]
    fn json_equality_follows_python() {
        assert!(python_eq(&json!([1, 2.0, true]), &json!([1.0, 2, 1])));
        assert!(python_eq(
            &json!({"a": 1, "b": [2]}),
            &json!({"b": [2], "a": 1})
        ));
        assert!(!python_eq(&json!([1, 2]), &json!([2, 1])));
        assert!(!python_eq(&json!("1"), &json!(1)));
        assert!(!python_eq(&json!(null), &json!(0)));
        assert!(python_eq(
            &json!(18446744073709551615u64),
            &json!(18446744073709551615u64)
        ));
    }
}
