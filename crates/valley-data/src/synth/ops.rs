//! The list-pipeline family of the synthetic corpus: the operations a problem chains, the reducer
//! that ends it, and the reference interpreter that computes expected outputs.
//!
//! Every operation has exactly one meaning, shared by four renderings: the statement sentence, the
//! one-line plan step of the teacher, the Python line of the solution and [`Op::apply`] here. The
//! interpreter follows Python's semantics where they differ from Rust's (`%` with a positive
//! modulus is never negative; slicing past the end is not an error).

use std::fmt::Write as _;

/// A comparison of an element with a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    /// `x > k`
    Gt,
    /// `x >= k`
    Ge,
    /// `x < k`
    Lt,
    /// `x <= k`
    Le,
    /// `x != k`
    Ne,
}

impl Cmp {
    /// The Python operator.
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Ne => "!=",
        }
    }

    /// Whether `x` passes.
    pub fn holds(self, x: i64, k: i64) -> bool {
        match self {
            Cmp::Gt => x > k,
            Cmp::Ge => x >= k,
            Cmp::Lt => x < k,
            Cmp::Le => x <= k,
            Cmp::Ne => x != k,
        }
    }

    /// The comparison a careless teacher writes instead: strict for non-strict and back.
    pub fn flipped_strictness(self) -> Option<Cmp> {
        match self {
            Cmp::Gt => Some(Cmp::Ge),
            Cmp::Ge => Some(Cmp::Gt),
            Cmp::Lt => Some(Cmp::Le),
            Cmp::Le => Some(Cmp::Lt),
            Cmp::Ne => None,
        }
    }
}

/// One step of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// Keep the elements with `x <cmp> k`.
    FilterCmp(Cmp, i64),
    /// Keep (`keep`) or remove (`!keep`) the elements with `x % m == r`.
    FilterMod {
        /// Modulus, at least 2.
        m: i64,
        /// Remainder in `0..m`.
        r: i64,
        /// Keep the matching elements (else remove them).
        keep: bool,
    },
    /// `x -> a * x + b`, `a != 0`.
    Affine {
        /// Multiplier.
        a: i64,
        /// Offset.
        b: i64,
    },
    /// `x -> |x|`.
    Abs,
    /// `x -> x mod m` (Python's: in `0..m`).
    Modulo(i64),
    /// Sort ascending, or descending.
    Sort {
        /// Descending.
        desc: bool,
    },
    /// Reverse the list.
    Reverse,
    /// Keep the first `k` elements.
    Take(usize),
    /// Remove the first `k` elements.
    Drop(usize),
    /// Remove repeated values, keeping first occurrences.
    Dedupe,
    /// Inclusive prefix sums.
    PrefixSums,
    /// Exclusive prefix sums: the off-by-one a careless teacher writes for [`Op::PrefixSums`].
    PrefixSumsExclusive,
    /// Neighbour differences `a[i+1] - a[i]`.
    Differences,
    /// Neighbour differences that forget the last pair: the off-by-one version of
    /// [`Op::Differences`].
    DifferencesShort,
}

/// What the program prints at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reducer {
    /// The sum (0 for an empty list).
    Sum,
    /// The largest element, `NONE` when empty.
    Max,
    /// The smallest element, `NONE` when empty.
    Min,
    /// The number of elements.
    Count,
    /// The product modulo `p` (1 for an empty list).
    ProductMod(i64),
    /// The elements separated by spaces, `EMPTY` when empty.
    PrintList,
}

impl Reducer {
    /// Whether the reducer has a special output for an empty list (and so a case to forget).
    pub fn has_empty_case(self) -> bool {
        matches!(self, Reducer::Max | Reducer::Min | Reducer::PrintList)
    }
}

fn modulo(x: i64, m: i64) -> i64 {
    x.rem_euclid(m)
}

impl Op {
    /// Whether the operation is one of the rarer kinds that make a problem harder.
    pub fn is_rare(&self) -> bool {
        !matches!(
            self,
            Op::FilterCmp(..) | Op::Affine { .. } | Op::Abs | Op::Sort { .. } | Op::Reverse
        )
    }

    /// Applies the operation with Python's semantics.
    pub fn apply(&self, a: Vec<i64>) -> Vec<i64> {
        match *self {
            Op::FilterCmp(cmp, k) => a.into_iter().filter(|&x| cmp.holds(x, k)).collect(),
            Op::FilterMod { m, r, keep } => a
                .into_iter()
                .filter(|&x| (modulo(x, m) == r) == keep)
                .collect(),
            Op::Affine { a: mul, b } => a.into_iter().map(|x| x * mul + b).collect(),
            Op::Abs => a.into_iter().map(i64::abs).collect(),
            Op::Modulo(m) => a.into_iter().map(|x| modulo(x, m)).collect(),
            Op::Sort { desc } => {
                let mut a = a;
                a.sort_unstable();
                if desc {
                    a.reverse();
                }
                a
            }
            Op::Reverse => a.into_iter().rev().collect(),
            Op::Take(k) => a.into_iter().take(k).collect(),
            Op::Drop(k) => a.into_iter().skip(k).collect(),
            Op::Dedupe => {
                let mut seen = std::collections::HashSet::new();
                a.into_iter().filter(|x| seen.insert(*x)).collect()
            }
            Op::PrefixSums => a
                .iter()
                .scan(0i64, |s, &x| {
                    *s += x;
                    Some(*s)
                })
                .collect(),
            Op::PrefixSumsExclusive => a
                .iter()
                .scan(0i64, |s, &x| {
                    let before = *s;
                    *s += x;
                    Some(before)
                })
                .collect(),
            Op::Differences => a.windows(2).map(|w| w[1] - w[0]).collect(),
            Op::DifferencesShort => {
                let n = a.len().saturating_sub(2);
                (0..n).map(|i| a[i + 1] - a[i]).collect()
            }
        }
    }

    /// The sentence of the statement that asks for this step.
    pub fn sentence(&self) -> String {
        match *self {
            Op::FilterCmp(cmp, k) => match cmp {
                Cmp::Gt => format!("Keep only the elements that are strictly greater than {k}."),
                Cmp::Ge => format!("Keep only the elements that are greater than or equal to {k}."),
                Cmp::Lt => format!("Keep only the elements that are strictly less than {k}."),
                Cmp::Le => format!("Keep only the elements that are less than or equal to {k}."),
                Cmp::Ne => format!("Remove every element equal to {k}."),
            },
            Op::FilterMod { m: 2, r, keep } => {
                let parity = if r == 0 { "even" } else { "odd" };
                if keep {
                    format!("Keep only the {parity} elements.")
                } else {
                    format!("Remove the {parity} elements.")
                }
            }
            Op::FilterMod { m, r, keep } => format!(
                "{} the elements whose remainder modulo {m} is {r} (the remainder is taken in 0..{}, also for negative numbers).",
                if keep { "Keep only" } else { "Remove" },
                m - 1
            ),
            Op::Affine { a: 1, b } => format!("Add {b} to every element."),
            Op::Affine { a, b: 0 } => format!("Multiply every element by {a}."),
            Op::Affine { a, b } => {
                format!("Replace every element x by {a} * x {}.", signed(b))
            }
            Op::Abs => "Replace every element by its absolute value.".into(),
            Op::Modulo(m) => format!(
                "Replace every element x by x mod {m}, a value in 0..{} (also for negative x).",
                m - 1
            ),
            Op::Sort { desc: false } => "Sort the list in non-decreasing order.".into(),
            Op::Sort { desc: true } => "Sort the list in non-increasing order.".into(),
            Op::Reverse => "Reverse the list.".into(),
            Op::Take(k) => format!(
                "Keep only the first {k} elements (all of them if there are fewer than {k})."
            ),
            Op::Drop(k) => format!(
                "Remove the first {k} elements (all of them if there are fewer than {k})."
            ),
            Op::Dedupe => {
                "Remove repeated values, keeping only the first occurrence of each value.".into()
            }
            Op::PrefixSums | Op::PrefixSumsExclusive => {
                "Replace the list by its prefix sums: the i-th element becomes the sum of the first i elements.".into()
            }
            Op::Differences | Op::DifferencesShort => {
                "Replace the list by the differences of neighbouring elements, a[i+1] - a[i] (a list with fewer than two elements becomes empty).".into()
            }
        }
    }

    /// The teacher's one-line plan step (describes what the code does, bugs included).
    pub fn plan(&self) -> String {
        match *self {
            Op::FilterCmp(cmp, k) => format!("keep x {} {k}", cmp.symbol()),
            Op::FilterMod { m, r, keep } => {
                format!(
                    "{} x with x % {m} == {r}",
                    if keep { "keep" } else { "drop" }
                )
            }
            Op::Affine { a, b } => format!("map x -> {a}*x {}", signed(b)),
            Op::Abs => "map x -> |x|".into(),
            Op::Modulo(m) => format!("map x -> x % {m}"),
            Op::Sort { desc: false } => "sort ascending".into(),
            Op::Sort { desc: true } => "sort descending".into(),
            Op::Reverse => "reverse".into(),
            Op::Take(k) => format!("take the first {k}"),
            Op::Drop(k) => format!("drop the first {k}"),
            Op::Dedupe => "dedupe, keeping first occurrences".into(),
            Op::PrefixSums => "prefix sums (running total including the current element)".into(),
            Op::PrefixSumsExclusive => {
                "prefix sums (running total before the current element)".into()
            }
            Op::Differences => "differences a[i+1] - a[i] for i in 0..len-2".into(),
            Op::DifferencesShort => "differences a[i+1] - a[i] for i in 0..len-3".into(),
        }
    }

    /// The Python lines of the step, indented by four spaces, acting on the list `a`.
    pub fn python(&self, out: &mut String) {
        match *self {
            Op::FilterCmp(cmp, k) => {
                let _ = writeln!(out, "    a = [x for x in a if x {} {k}]", cmp.symbol());
            }
            Op::FilterMod { m, r, keep } => {
                let op = if keep { "==" } else { "!=" };
                let _ = writeln!(out, "    a = [x for x in a if x % {m} {op} {r}]");
            }
            Op::Affine { a, b } => {
                let _ = writeln!(out, "    a = [{a} * x {} for x in a]", signed(b));
            }
            Op::Abs => out.push_str("    a = [abs(x) for x in a]\n"),
            Op::Modulo(m) => {
                let _ = writeln!(out, "    a = [x % {m} for x in a]");
            }
            Op::Sort { desc: false } => out.push_str("    a.sort()\n"),
            Op::Sort { desc: true } => out.push_str("    a.sort(reverse=True)\n"),
            Op::Reverse => out.push_str("    a = a[::-1]\n"),
            Op::Take(k) => {
                let _ = writeln!(out, "    a = a[:{k}]");
            }
            Op::Drop(k) => {
                let _ = writeln!(out, "    a = a[{k}:]");
            }
            Op::Dedupe => out.push_str("    a = list(dict.fromkeys(a))\n"),
            Op::PrefixSums => out.push_str(
                "    total = 0\n    sums = []\n    for x in a:\n        total += x\n        sums.append(total)\n    a = sums\n",
            ),
            Op::PrefixSumsExclusive => out.push_str(
                "    total = 0\n    sums = []\n    for x in a:\n        sums.append(total)\n        total += x\n    a = sums\n",
            ),
            Op::Differences => {
                out.push_str("    a = [a[i + 1] - a[i] for i in range(len(a) - 1)]\n")
            }
            Op::DifferencesShort => {
                out.push_str("    a = [a[i + 1] - a[i] for i in range(len(a) - 2)]\n")
            }
        }
    }
}

impl Reducer {
    /// What the statement asks to print.
    pub fn sentence(self) -> String {
        match self {
            Reducer::Sum => "print the sum of the elements (0 if the list is empty).".into(),
            Reducer::Max => "print the largest element, or NONE if the list is empty.".into(),
            Reducer::Min => "print the smallest element, or NONE if the list is empty.".into(),
            Reducer::Count => "print the number of elements.".into(),
            Reducer::ProductMod(p) => format!(
                "print the product of the elements modulo {p}, as a value in 0..{} (the product of an empty list is 1).",
                p - 1
            ),
            Reducer::PrintList => "print the elements on one line separated by single spaces, or EMPTY if the list is empty.".into(),
        }
    }

    /// The teacher's plan step.
    pub fn plan(self, forgets_empty: bool) -> String {
        let empty = |what: &str| {
            if forgets_empty {
                String::new()
            } else {
                format!(" ({what} when empty)")
            }
        };
        match self {
            Reducer::Sum => "print the sum".into(),
            Reducer::Max => format!("print the maximum{}", empty("NONE")),
            Reducer::Min => format!("print the minimum{}", empty("NONE")),
            Reducer::Count => "print the count".into(),
            Reducer::ProductMod(p) => format!("print the product mod {p}"),
            Reducer::PrintList => format!("print the list{}", empty("EMPTY")),
        }
    }

    /// The reference output (what a correct program prints, without the newline).
    pub fn output(self, a: &[i64]) -> String {
        match self {
            Reducer::Sum => a.iter().sum::<i64>().to_string(),
            Reducer::Max => a
                .iter()
                .max()
                .map_or_else(|| "NONE".into(), ToString::to_string),
            Reducer::Min => a
                .iter()
                .min()
                .map_or_else(|| "NONE".into(), ToString::to_string),
            Reducer::Count => a.len().to_string(),
            Reducer::ProductMod(p) => a
                .iter()
                .fold(1i128, |r, &x| (r * i128::from(x)).rem_euclid(i128::from(p)))
                .to_string(),
            Reducer::PrintList if a.is_empty() => "EMPTY".into(),
            Reducer::PrintList => a
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The Python lines that print the result of the list `a`.
    pub fn python(self, forgets_empty: bool, out: &mut String) {
        match self {
            Reducer::Sum => out.push_str("    print(sum(a))\n"),
            Reducer::Count => out.push_str("    print(len(a))\n"),
            Reducer::Max | Reducer::Min => {
                let f = if self == Reducer::Max { "max" } else { "min" };
                if forgets_empty {
                    let _ = writeln!(out, "    print({f}(a))");
                } else {
                    let _ = writeln!(out, "    print({f}(a) if a else \"NONE\")");
                }
            }
            Reducer::ProductMod(p) => {
                let _ = write!(
                    out,
                    "    result = 1\n    for x in a:\n        result = result * x % {p}\n    print(result)\n"
                );
            }
            Reducer::PrintList => {
                if forgets_empty {
                    out.push_str("    print(\" \".join(map(str, a)))\n");
                } else {
                    out.push_str("    print(\" \".join(map(str, a)) if a else \"EMPTY\")\n");
                }
            }
        }
    }
}

/// `+ 3`, `- 3` or `+ 0`.
pub fn signed(b: i64) -> String {
    if b < 0 {
        format!("- {}", -b)
    } else {
        format!("+ {b}")
    }
}

/// A list written as Python prints it: `[1, -2, 3]`.
pub fn show_list(a: &[i64]) -> String {
    let mut s = String::from("[");
    for (i, x) in a.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{x}");
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_semantics_of_modulo_slicing_and_dedupe() {
        // Python: [x % 3 for x in [-4, -3, 5]] == [2, 0, 2]
        assert_eq!(Op::Modulo(3).apply(vec![-4, -3, 5]), [2, 0, 2]);
        // Python: [x for x in [-3, -1, 4] if x % 2 == 1] == [-3, -1]
        let odd = Op::FilterMod {
            m: 2,
            r: 1,
            keep: true,
        };
        assert_eq!(odd.apply(vec![-3, -1, 4]), [-3, -1]);
        assert_eq!(Op::Take(5).apply(vec![1, 2]), [1, 2]);
        assert_eq!(Op::Drop(5).apply(vec![1, 2]), Vec::<i64>::new());
        assert_eq!(Op::Dedupe.apply(vec![3, 1, 3, 2, 1]), [3, 1, 2]);
        assert_eq!(Op::PrefixSums.apply(vec![1, 2, 3]), [1, 3, 6]);
        assert_eq!(Op::PrefixSumsExclusive.apply(vec![1, 2, 3]), [0, 1, 3]);
        assert_eq!(Op::Differences.apply(vec![1, 4, 9]), [3, 5]);
        assert_eq!(Op::DifferencesShort.apply(vec![1, 4, 9]), [3]);
        assert_eq!(Op::Differences.apply(vec![1]), Vec::<i64>::new());
        assert_eq!(Op::DifferencesShort.apply(vec![1]), Vec::<i64>::new());
        // Python: (-2 * -3) % 7 == 6, then 6 * 5 % 7 == 2
        assert_eq!(Reducer::ProductMod(7).output(&[-2, -3, 5]), "2");
        assert_eq!(Reducer::ProductMod(7).output(&[-1]), "6");
        assert_eq!(Reducer::Max.output(&[]), "NONE");
        assert_eq!(Reducer::PrintList.output(&[]), "EMPTY");
        assert_eq!(Reducer::PrintList.output(&[1, -2]), "1 -2");
    }
}
