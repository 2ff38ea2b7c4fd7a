//! The unbiased pass@k estimator of Chen et al. (2021), `1 - C(n-c, k) / C(n, k)`, computed as
//! the product `1 - prod_{i=n-c+1}^{n} (1 - k/i)` so no binomial coefficient overflows.

/// pass@k of one problem with `n` samples of which `c` passed; `None` when `k > n` (undefined).
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let prod: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    Some(1.0 - prod)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Values worked out by hand from the binomial form.
    #[test]
    fn matches_hand_computed_values() {
        // pass@1 is the fraction correct.
        assert!(close(pass_at_k(10, 3, 1).unwrap(), 0.3));
        // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10.
        assert!(close(pass_at_k(5, 2, 2).unwrap(), 0.7));
        // n=10, c=1, k=5: 1 - C(9,5)/C(10,5) = 1 - 126/252.
        assert!(close(pass_at_k(10, 1, 5).unwrap(), 0.5));
        // n=4, c=1, k=3: 1 - C(3,3)/C(4,3) = 1 - 1/4.
        assert!(close(pass_at_k(4, 1, 3).unwrap(), 0.75));
        // Fewer failures than k: certain.
        assert_eq!(pass_at_k(10, 8, 5), Some(1.0));
        assert_eq!(pass_at_k(3, 0, 2), Some(0.0));
        assert_eq!(pass_at_k(3, 1, 4), None);
    }

    #[test]
    fn large_n_stays_finite() {
        // C(1000, 500) overflows f64; the product form does not. n=1000, c=1, k=500 -> 0.5.
        assert!(close(pass_at_k(1000, 1, 500).unwrap(), 0.5));
    }
}
