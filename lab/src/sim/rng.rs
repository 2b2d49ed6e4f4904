//! A small, fast, seedable random number generator and the distributions
//! the simulator needs. Written here so the library carries no `rand`
//! dependency, and so traces are identical on every platform and version.

/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for `seed`; distinct `stream`s give independent sequences
    /// (one per account, so generation order never changes a trace).
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut x = seed ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03);
        let s = [
            splitmix(&mut x),
            splitmix(&mut x),
            splitmix(&mut x),
            splitmix(&mut x),
        ];
        Rng { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (0 if `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Index drawn with a Zipf-like skew over `n` items (weight 1/(i+1)^s).
    pub fn zipf(&mut self, n: usize, s: f64) -> usize {
        // Inverse transform on the continuous approximation; fine for n ≤ 10^6.
        let u = self.unit();
        if (s - 1.0).abs() < 1e-9 {
            let x = ((n as f64 + 1.0).ln() * u).exp() - 1.0;
            return (x as usize).min(n - 1);
        }
        let a = 1.0 - s;
        let top = (n as f64 + 1.0).powf(a) - 1.0;
        let x = (1.0 + u * top).powf(1.0 / a) - 1.0;
        (x as usize).min(n - 1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Log-normal with the given median and shape σ.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Poisson with mean `lambda` (Knuth for small means, normal beyond).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 50.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let l = (-lambda).exp();
        let mut k = 0;
        let mut p = 1.0;
        loop {
            p *= self.unit();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(1, 2).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::new(1, 2).next_u64(), Rng::new(1, 3).next_u64());
    }

    #[test]
    fn distributions_have_their_means() {
        let mut r = Rng::new(7, 0);
        let n = 100_000;
        let mean = |f: &mut dyn FnMut() -> f64| (0..n).map(|_| f()).sum::<f64>() / n as f64;
        // Standard errors: unit 0.0009, normal 0.003, poisson(4) 0.006.
        assert!((mean(&mut || r.unit()) - 0.5).abs() < 0.005);
        let mut r = Rng::new(8, 0);
        assert!(mean(&mut || r.normal()).abs() < 0.015);
        let mut r = Rng::new(9, 0);
        assert!((mean(&mut || r.poisson(4.0) as f64) - 4.0).abs() < 0.03);
        let mut r = Rng::new(10, 0);
        assert!((0..n).all(|_| r.below(7) < 7));
        let mut r = Rng::new(11, 0);
        let z: Vec<usize> = (0..n).map(|_| r.zipf(100, 1.1)).collect();
        assert!(z.iter().all(|&i| i < 100));
        assert!(
            z.iter().filter(|&&i| i == 0).count() > z.iter().filter(|&&i| i == 50).count() * 10
        );
    }
}
