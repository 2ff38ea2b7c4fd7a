//! Seed statistics: mean, min–max, and the two-sided 95 % Student t-interval of the mean.
//!
//! For n values x₁…xₙ (one per seed): mean m = Σxᵢ/n, sample standard deviation
//! s = √(Σ(xᵢ−m)²/(n−1)), and the interval m ± t₀.₉₇₅,ₙ₋₁ · s/√n. It assumes the seeds' scores are
//! roughly normal around the true mean; with 3–5 seeds a bootstrap would be too coarse to trust, the
//! t-interval at least widens honestly as n shrinks. n < 2 has no interval (no spread to measure).

/// Two-sided 95 % critical values of Student's t, t₀.₉₇₅,ν for ν = 1…30 degrees of freedom
/// (standard table, e.g. NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.6.7.2, to 4 decimals).
const T_975: [f64; 30] = [
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010,
    2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687,
    2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
];

/// t₀.₉₇₅,ν: the table for ν ≤ 30; above it the Cornish–Fisher expansion around z = 1.959964
/// (Abramowitz & Stegun 26.7.5), which is within 1e-4 of the exact value there.
///
/// # Panics
/// When `df` is 0 (no interval exists).
pub fn t_critical_975(df: usize) -> f64 {
    assert!(df > 0, "a t-interval needs at least one degree of freedom");
    if df <= T_975.len() {
        return T_975[df - 1];
    }
    let z: f64 = 1.959_963_984_540_054;
    let v = df as f64;
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    z + (z3 + z) / (4.0 * v)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v * v * v)
}

/// The summary of one group of seed values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// How many values (seeds).
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Half-width of the 95 % t-interval of the mean; `None` when n < 2.
    pub half_width: Option<f64>,
}

impl Summary {
    /// Summarizes finite values; `None` for an empty slice. Callers drop non-finite values first
    /// (and say so in the report).
    pub fn of(values: &[f64]) -> Option<Summary> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let half_width = (n >= 2).then(|| {
            let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t_critical_975(n - 1) * var.sqrt() / (n as f64).sqrt()
        });
        Some(Summary {
            n,
            mean,
            min,
            max,
            half_width,
        })
    }

    /// The 95 % interval (lower, upper), when there is one.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.half_width.map(|h| (self.mean - h, self.mean + h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand computation for x = [0.10, 0.20, 0.30]:
    ///   m = 0.6/3 = 0.2; s² = (0.01 + 0 + 0.01)/2 = 0.01, s = 0.1; s/√3 = 0.0577350;
    ///   t₀.₉₇₅,₂ = 4.3027; half-width = 4.3027 × 0.0577350 = 0.248417;
    ///   interval = (−0.048417, 0.448417).
    #[test]
    fn t_interval_matches_a_hand_computed_example() {
        let s = Summary::of(&[0.30, 0.10, 0.20]).unwrap();
        assert_eq!(s.n, 3);
        assert!((s.mean - 0.2).abs() < 1e-12);
        assert_eq!((s.min, s.max), (0.10, 0.30));
        let h = s.half_width.unwrap();
        assert!((h - 0.248417).abs() < 1e-6, "{h}");
        let (lo, hi) = s.interval().unwrap();
        assert!((lo + 0.048417).abs() < 1e-6 && (hi - 0.448417).abs() < 1e-6);
    }

    /// Two values 1 and 3: m = 2, s = √2, s/√2 = 1, t₀.₉₇₅,₁ = 12.7062 → half-width 12.7062.
    #[test]
    fn two_seeds_give_the_wide_interval_of_one_degree_of_freedom() {
        let h = Summary::of(&[1.0, 3.0]).unwrap().half_width.unwrap();
        assert!((h - 12.7062).abs() < 1e-9, "{h}");
    }

    #[test]
    fn one_value_has_no_interval_and_none_has_no_summary() {
        let s = Summary::of(&[0.5]).unwrap();
        assert_eq!((s.n, s.mean, s.half_width), (1, 0.5, None));
        assert_eq!(Summary::of(&[]), None);
    }

    /// Exact quantiles (R: qt(0.975, c(40, 60, 120, 1000))): 2.021075, 2.000298, 1.979930,
    /// 1.962339. The expansion meets the table at ν = 30/31 without a jump.
    #[test]
    fn large_df_expansion_matches_exact_quantiles() {
        for (df, exact) in [
            (40, 2.021075),
            (60, 2.000298),
            (120, 1.979930),
            (1000, 1.962339),
        ] {
            let t = t_critical_975(df);
            assert!((t - exact).abs() < 1e-4, "df {df}: {t} vs {exact}");
        }
        let (t30, t31) = (t_critical_975(30), t_critical_975(31));
        assert!(t31 < t30 && t30 - t31 < 0.003, "{t30} {t31}");
    }
}
