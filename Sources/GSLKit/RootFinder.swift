import CGSL

private final class RootContext {
    let f: (Double) throws -> Double
    var error: (any Error)?
    init(_ f: @escaping (Double) throws -> Double) { self.f = f }
}

private func rootTrampoline(_ x: Double, _ params: UnsafeMutableRawPointer?) -> Double {
    guard let params else { return .nan }
    let ctx = Unmanaged<RootContext>.fromOpaque(params).takeUnretainedValue()
    do { return try ctx.f(x) } catch {
        if ctx.error == nil { ctx.error = error }
        return .nan
    }
}

/// Bracketing scalar root finding on GSL's `gsl_root_fsolver` (Brent).
public enum RootFinder {
    /// A root of `f` in `[lower, upper]`, where `f(lower)` and `f(upper)`
    /// have opposite signs; converged when the bracket is within
    /// `absTol + relTol·|x|`.
    public static func brent(_ f: @escaping (Double) throws -> Double, lower: Double, upper: Double,
                             absTol: Double = 0, relTol: Double = 1e-14, maxIterations: Int = 200) throws -> Double {
        ensureGSLErrorsOff()
        let ctx = RootContext(f)
        // The solver keeps the pointer to the gsl_function it is set with and
        // calls through it on every iteration, so the struct must outlive the
        // loop: a `&local` argument is only valid during the one call.
        let function = UnsafeMutablePointer<gsl_function>.allocate(capacity: 1)
        function.initialize(to: gsl_function(function: rootTrampoline, params: Unmanaged.passUnretained(ctx).toOpaque()))
        defer { function.deinitialize(count: 1); function.deallocate() }
        guard let solver = gsl_root_fsolver_alloc(cgsl_root_brent()) else {
            throw GSLError(code: cgsl_failure(), context: "gsl_root_fsolver_alloc")
        }
        defer { gsl_root_fsolver_free(solver) }
        return try withExtendedLifetime(ctx) {
            let status = gsl_root_fsolver_set(solver, function, lower, upper)
            if let e = ctx.error { throw e }
            try check(status, "root bracket [\(lower), \(upper)]: f must be finite with opposite signs at the ends")
            for _ in 0..<maxIterations {
                let status = gsl_root_fsolver_iterate(solver)
                // A throwing f reaches GSL as NaN, which GSL reports as its
                // own error: the caller's error comes first.
                if let e = ctx.error { throw e }
                try check(status, "gsl_root_fsolver_iterate")
                let lo = gsl_root_fsolver_x_lower(solver), hi = gsl_root_fsolver_x_upper(solver)
                if gsl_root_test_interval(lo, hi, absTol, relTol) == 0 { return gsl_root_fsolver_root(solver) }
            }
            return gsl_root_fsolver_root(solver)
        }
    }

    /// Every sign change of `f` on a grid of `samples` points between
    /// `lower` and `upper` (geometric when `logSpaced`), each refined by Brent.
    public static func allRoots(_ f: @escaping (Double) throws -> Double, lower: Double, upper: Double,
                                samples: Int = 200, logSpaced: Bool = false, relTol: Double = 1e-14) throws -> [Double] {
        precondition(samples >= 2 && upper > lower)
        var xs: [Double] = []
        for i in 0..<samples {
            let s = Double(i) / Double(samples - 1)
            xs.append(logSpaced ? lower * pow(upper / lower, s) : lower + s * (upper - lower))
        }
        let fs = try xs.map(f)
        var roots: [Double] = []
        for i in 0..<(samples - 1) {
            if fs[i] == 0 { roots.append(xs[i]); continue }
            if fs[i].sign != fs[i + 1].sign && fs[i].isFinite && fs[i + 1].isFinite && fs[i + 1] != 0 {
                roots.append(try brent(f, lower: xs[i], upper: xs[i + 1], relTol: relTol))
            }
        }
        if let last = fs.last, last == 0 { roots.append(xs[samples - 1]) }
        return roots
    }
}
