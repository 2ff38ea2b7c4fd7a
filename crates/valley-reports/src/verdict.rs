//! The valley verdict: a pure function from an arm's seed summaries (base model and each trained
//! size) and the metric's direction to *present*, *absent* or *inconclusive*.
//!
//! The rule ([`RULE`] is the text the report prints). Scores are first oriented by the metric's
//! [`Direction`] (negated when lower is better) so that "below" always means "worse"; a metric
//! with no direction gets no verdict. The *margin* between two groups is the sum of their 95 %
//! t-interval half-widths (see [`crate::stats`]).
//!
//! 1. Inconclusive when there is no base-model group (size 0), no trained size, or any of these
//!    groups has fewer than 2 finished seeds (no spread to compare against).
//! 2. A *dip* is a trained size whose mean lies below the base's mean by more than their margin.
//!    A *climb* out of a dip is a larger size whose mean lies above the dip's mean by more than
//!    their margin.
//! 3. **Present** when some dip has a climb after it; the trough reported is the lowest such dip
//!    and the climb the first size after it that clears the margin.
//! 4. Otherwise **inconclusive** when there is a dip but nothing climbs out of it (the climb may lie
//!    past the largest size), or when some size's mean is below the base's but within the margin
//!    (a dip inside the seeds' noise).
//! 5. Otherwise **absent**: no trained size's mean is below the base's.

use std::fmt;

use crate::{record::Direction, stats::Summary};

/// The rule as the report states it.
pub const RULE: &str = "\
Scores are oriented by the metric's direction (so \"below\" means worse) and the *margin* between \
two groups is the sum of their 95 % t-interval half-widths. A **dip** is a trained size whose mean \
is below the base model's mean by more than their margin; a **climb** is a larger size whose mean \
is above the dip's mean by more than their margin. The valley is **present** when some dip is \
followed by a climb; **inconclusive** when the metric has no direction, the base or a trained size \
is missing or has fewer than 2 finished seeds, a dip has no climb after it, or a size is below the \
base only within the margin; **absent** when no trained size's mean is below the base's.";

/// A group of seeds at one size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizePoint {
    /// Training size (0 is the base model).
    pub size: u64,
    /// The seeds' summary.
    pub summary: Summary,
}

/// The verdict for one arm.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A dip below the base followed by a climb out of it.
    Present {
        /// The base model's mean.
        base: f64,
        /// The trough's size and mean.
        trough: (u64, f64),
        /// The first size that climbs out of the trough, and its mean.
        climb: (u64, f64),
    },
    /// No trained size's mean is below the base's.
    Absent,
    /// Neither can be said.
    Inconclusive(Why),
}

/// Why a verdict is inconclusive.
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    /// The metric has no better direction (or its cells disagree on it).
    NoDirection,
    /// No base-model (size 0) cell finished.
    NoBase,
    /// No trained size finished.
    NoTrainedSize,
    /// These groups (size, finished seeds) have fewer than 2 seeds.
    TooFewSeeds(Vec<(u64, usize)>),
    /// A dip with no climb after it.
    DipWithoutClimb {
        /// The base's mean.
        base: f64,
        /// The deepest dip's size and mean.
        dip: (u64, f64),
    },
    /// A size below the base, but within the margin.
    DipInsideNoise {
        /// The base's mean.
        base: f64,
        /// The lowest size's size and mean.
        low: (u64, f64),
        /// The margin it stays within.
        margin: f64,
    },
}

impl Verdict {
    /// `present`, `absent` or `inconclusive`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Present { .. } => "present",
            Verdict::Absent => "absent",
            Verdict::Inconclusive(_) => "inconclusive",
        }
    }
}

/// Applies the rule of this module. `base` is the size-0 group, `trained` the trained sizes in
/// any order; means are in the metric's own units (not oriented) in and out.
pub fn valley_verdict(
    direction: Option<Direction>,
    base: Option<Summary>,
    trained: &[SizePoint],
) -> Verdict {
    let Some(sign) = direction.and_then(Direction::sign) else {
        return Verdict::Inconclusive(Why::NoDirection);
    };
    let Some(base) = base else {
        return Verdict::Inconclusive(Why::NoBase);
    };
    if trained.is_empty() {
        return Verdict::Inconclusive(Why::NoTrainedSize);
    }
    let mut points: Vec<SizePoint> = trained.to_vec();
    points.sort_by_key(|p| p.size);
    let thin: Vec<(u64, usize)> = std::iter::once((0, base.n))
        .chain(points.iter().map(|p| (p.size, p.summary.n)))
        .filter(|&(_, n)| n < 2)
        .collect();
    if !thin.is_empty() {
        return Verdict::Inconclusive(Why::TooFewSeeds(thin));
    }
    // Oriented mean and half-width (n >= 2 everywhere from here, so every half-width exists).
    let oriented = |s: &Summary| (sign * s.mean, s.half_width.unwrap_or(0.0));
    let (b, hb) = oriented(&base);
    let pts: Vec<(u64, f64, f64)> = points
        .iter()
        .map(|p| {
            let (m, h) = oriented(&p.summary);
            (p.size, m, h)
        })
        .collect();
    let raw = |m: f64| sign * m;

    let dips: Vec<usize> = (0..pts.len())
        .filter(|&i| b - pts[i].1 > hb + pts[i].2)
        .collect();
    let climb_after =
        |i: usize| (i + 1..pts.len()).find(|&j| pts[j].1 - pts[i].1 > pts[i].2 + pts[j].2);
    let deepest = |idx: &mut dyn Iterator<Item = usize>| {
        idx.min_by(|&x, &y| pts[x].1.total_cmp(&pts[y].1).then(pts[x].0.cmp(&pts[y].0)))
    };
    if let Some(trough) = deepest(&mut dips.iter().copied().filter(|&i| climb_after(i).is_some())) {
        let j = climb_after(trough).unwrap_or(trough);
        return Verdict::Present {
            base: raw(b),
            trough: (pts[trough].0, raw(pts[trough].1)),
            climb: (pts[j].0, raw(pts[j].1)),
        };
    }
    if let Some(d) = deepest(&mut dips.iter().copied()) {
        return Verdict::Inconclusive(Why::DipWithoutClimb {
            base: raw(b),
            dip: (pts[d].0, raw(pts[d].1)),
        });
    }
    if let Some(low) = deepest(&mut (0..pts.len()).filter(|&i| pts[i].1 < b)) {
        return Verdict::Inconclusive(Why::DipInsideNoise {
            base: raw(b),
            low: (pts[low].0, raw(pts[low].1)),
            margin: hb + pts[low].2,
        });
    }
    Verdict::Absent
}

impl fmt::Display for Verdict {
    /// One sentence with the numbers behind the verdict (3 decimals).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = crate::format::round3;
        match self {
            Verdict::Present {
                base,
                trough,
                climb,
            } => write!(
                f,
                "dips to {} at size {} (base {}), climbs to {} at size {}",
                r(trough.1),
                trough.0,
                r(*base),
                r(climb.1),
                climb.0
            ),
            Verdict::Absent => f.write_str("no trained size's mean is below the base model's"),
            Verdict::Inconclusive(why) => match why {
                Why::NoDirection => f.write_str("the metric has no better direction"),
                Why::NoBase => f.write_str("no base-model (size 0) cell finished"),
                Why::NoTrainedSize => f.write_str("no trained size finished"),
                Why::TooFewSeeds(groups) => {
                    f.write_str("too few seeds (need 2 per size): ")?;
                    let parts: Vec<String> = groups
                        .iter()
                        .map(|(size, n)| format!("size {size} has n = {n}"))
                        .collect();
                    f.write_str(&parts.join(", "))
                }
                Why::DipWithoutClimb { base, dip } => write!(
                    f,
                    "dips to {} at size {} (base {}) but no larger size climbs out of it",
                    r(dip.1),
                    dip.0,
                    r(*base)
                ),
                Why::DipInsideNoise { base, low, margin } => write!(
                    f,
                    "lowest mean {} at size {} is below the base {} only within the margin {}",
                    r(low.1),
                    low.0,
                    r(*base),
                    r(*margin)
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(values: &[f64]) -> Summary {
        Summary::of(values).unwrap()
    }

    fn pts(groups: &[(u64, &[f64])]) -> Vec<SizePoint> {
        groups
            .iter()
            .map(|&(size, v)| SizePoint {
                size,
                summary: group(v),
            })
            .collect()
    }

    const UP: Option<Direction> = Some(Direction::HigherIsBetter);

    /// The paper's Qwen2.5 shape (base 0.127, 1K 0.055, 10K 0.188) with a ±0.005 seed spread:
    /// half-widths are 4.3027 × 0.005/√3 = 0.0124, far below the 0.07 gaps.
    #[test]
    fn a_clear_valley_is_present() {
        let base = group(&[0.122, 0.127, 0.132]);
        let trained = pts(&[
            (10_000, &[0.183, 0.188, 0.193]),
            (1_000, &[0.050, 0.055, 0.060]),
            (30_000, &[0.259, 0.264, 0.269]),
        ]);
        let v = valley_verdict(UP, Some(base), &trained);
        let Verdict::Present {
            base,
            trough,
            climb,
        } = v
        else {
            panic!("{v:?}")
        };
        assert!((base - 0.127).abs() < 1e-9);
        assert_eq!(trough.0, 1_000);
        assert!((trough.1 - 0.055).abs() < 1e-9);
        assert_eq!(climb.0, 10_000);
        assert_eq!(
            v_string(UP, &[0.122, 0.127, 0.132], &trained),
            "dips to 0.055 at size 1000 (base 0.127), climbs to 0.188 at size 10000"
        );
    }

    fn v_string(d: Option<Direction>, base: &[f64], trained: &[SizePoint]) -> String {
        valley_verdict(d, Some(group(base)), trained).to_string()
    }

    #[test]
    fn a_monotone_climb_is_absent() {
        let trained = pts(&[(10, &[0.21, 0.22, 0.23]), (100, &[0.30, 0.31, 0.32])]);
        let v = valley_verdict(UP, Some(group(&[0.19, 0.20, 0.21])), &trained);
        assert_eq!(v, Verdict::Absent);
    }

    /// Base mean 0.20 (s = 0.02, half-width 4.3027 × 0.02/√3 = 0.0497); size 10 mean 0.18 with the
    /// same spread: gap 0.02 < margin 0.0994, so the dip is inside the noise.
    #[test]
    fn a_dip_inside_the_noise_is_inconclusive() {
        let trained = pts(&[(10, &[0.16, 0.18, 0.20]), (100, &[0.40, 0.42, 0.44])]);
        let v = valley_verdict(UP, Some(group(&[0.18, 0.20, 0.22])), &trained);
        let Verdict::Inconclusive(Why::DipInsideNoise { low, margin, .. }) = v else {
            panic!("{v:?}")
        };
        assert_eq!(low.0, 10);
        assert!(
            (margin - 2.0 * 4.3027 * 0.02 / 3f64.sqrt()).abs() < 1e-9,
            "{margin}"
        );
    }

    #[test]
    fn one_seed_is_inconclusive_and_names_the_sizes() {
        let trained = pts(&[(10, &[0.05]), (100, &[0.40, 0.42])]);
        let v = valley_verdict(UP, Some(group(&[0.2])), &trained);
        assert_eq!(
            v,
            Verdict::Inconclusive(Why::TooFewSeeds(vec![(0, 1), (10, 1)]))
        );
        assert_eq!(
            v.to_string(),
            "too few seeds (need 2 per size): size 0 has n = 1, size 10 has n = 1"
        );
    }

    #[test]
    fn a_dip_without_a_climb_is_inconclusive() {
        let trained = pts(&[(10, &[0.05, 0.06, 0.07]), (100, &[0.06, 0.07, 0.08])]);
        let v = valley_verdict(UP, Some(group(&[0.20, 0.21, 0.22])), &trained);
        assert!(
            matches!(
                v,
                Verdict::Inconclusive(Why::DipWithoutClimb { dip: (10, _), .. })
            ),
            "{v:?}"
        );
    }

    /// The direction comes from the metric, not its name: the same numbers as a loss (lower is
    /// better) read a rise above the base as the dip, so a valley in pass@1 mirrored in a loss
    /// is still a valley, and the pass@1-shaped numbers read as a loss are a hump, not a valley.
    #[test]
    fn the_direction_decides_what_a_dip_is() {
        let base = [1.00, 1.01, 1.02];
        let hump = pts(&[(10, &[1.50, 1.51, 1.52]), (100, &[0.60, 0.61, 0.62])]);
        assert!(matches!(
            valley_verdict(Some(Direction::LowerIsBetter), Some(group(&base)), &hump),
            Verdict::Present {
                trough: (10, _),
                climb: (100, _),
                ..
            }
        ));
        assert!(matches!(
            valley_verdict(UP, Some(group(&base)), &hump),
            Verdict::Inconclusive(Why::DipWithoutClimb { dip: (100, _), .. })
        ));
        assert_eq!(
            valley_verdict(Some(Direction::Neutral), Some(group(&base)), &hump),
            Verdict::Inconclusive(Why::NoDirection)
        );
    }

    #[test]
    fn missing_groups_are_inconclusive() {
        let trained = pts(&[(10, &[0.1, 0.2])]);
        assert_eq!(
            valley_verdict(UP, None, &trained),
            Verdict::Inconclusive(Why::NoBase)
        );
        assert_eq!(
            valley_verdict(UP, Some(group(&[0.1, 0.2])), &[]),
            Verdict::Inconclusive(Why::NoTrainedSize)
        );
    }

    /// Two dips, both climbed out of: the trough is the lower one, not the first.
    #[test]
    fn the_trough_is_the_deepest_dip_with_a_climb() {
        let trained = pts(&[
            (10, &[0.10, 0.11, 0.12]),
            (20, &[0.02, 0.03, 0.04]),
            (40, &[0.30, 0.31, 0.32]),
        ]);
        let v = valley_verdict(UP, Some(group(&[0.20, 0.21, 0.22])), &trained);
        assert!(
            matches!(
                v,
                Verdict::Present {
                    trough: (20, _),
                    climb: (40, _),
                    ..
                }
            ),
            "{v:?}"
        );
    }
}
