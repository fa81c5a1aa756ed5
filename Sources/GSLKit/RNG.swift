import CGSL

/// GSL's Mersenne Twister (`gsl_rng_mt19937`): the same seed gives the same
/// stream on every machine. Not thread-safe: one generator per task.
public final class RNG {
    private let rng: UnsafeMutablePointer<gsl_rng>
    /// The seed it was created with.
    public let seed: UInt

    public init(seed: UInt) {
        ensureGSLErrorsOff()
        guard let r = gsl_rng_alloc(cgsl_rng_mt19937()) else {
            fatalError("gsl_rng_alloc failed: out of memory")
        }
        rng = r
        self.seed = seed
        gsl_rng_set(r, seed)
    }

    deinit { gsl_rng_free(rng) }

    /// Uniform on `[0, 1)`.
    public func uniform() -> Double { gsl_rng_uniform(rng) }

    /// Uniform on `(0, 1)`.
    public func uniformPositive() -> Double { gsl_rng_uniform_pos(rng) }

    /// Uniform integer in `0..<n`.
    public func uniformInt(_ n: Int) -> Int {
        precondition(n > 0)
        return Int(gsl_rng_uniform_int(rng, UInt(n)))
    }

    /// Gaussian with mean 0 and standard deviation `sigma` (`gsl_ran_gaussian_ziggurat`).
    public func gaussian(sigma: Double = 1) -> Double { gsl_ran_gaussian_ziggurat(rng, sigma) }

    /// `count` Gaussian draws.
    public func gaussians(_ count: Int, sigma: Double = 1) -> [Double] {
        (0..<count).map { _ in gaussian(sigma: sigma) }
    }

    /// A uniformly random `k`-subset of `0..<n`, sorted (`gsl_ran_choose`).
    public func choose(_ k: Int, from n: Int) -> [Int] {
        precondition(k >= 0 && k <= n)
        if k == 0 { return [] }
        var src = Array(0..<n)
        var dst = [Int](repeating: 0, count: k)
        src.withUnsafeMutableBytes { s in
            dst.withUnsafeMutableBytes { d in
                _ = gsl_ran_choose(rng, d.baseAddress, k, s.baseAddress, n, MemoryLayout<Int>.stride)
            }
        }
        return dst
    }
}
