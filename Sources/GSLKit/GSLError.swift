import CGSL

/// An error reported by GSL through its status code (GSL's abort-on-error
/// handler is switched off before any GSL call is made through GSLKit).
public struct GSLError: Error, CustomStringConvertible, Sendable, Equatable {
    /// GSL's status code (`GSL_EBADFUNC`, `GSL_ENOPROG`, ...).
    public let code: Int32
    /// What was being done when GSL reported the error.
    public let context: String

    public init(code: Int32, context: String) {
        self.code = code
        self.context = context
    }

    /// GSL's own text for the status code.
    public var reason: String { String(cString: gsl_strerror(code)) }

    public var description: String { "\(context): GSL error \(code) (\(reason))" }
}

/// Turns GSL's abort-on-error handler off. Every GSLKit entry point calls
/// this first; it stores the same value each time, so racing calls agree.
@inline(__always)
func ensureGSLErrorsOff() {
    cgsl_errors_off()
    _ = blasConfigured
}

/// Configures the BLAS once (single-threaded unless `WNFLOW_BLAS_THREADS`
/// says otherwise, OpenBLAS's generic fallback kernels replaced; see
/// `BLAS.kernelChosenByWNFlow`), before the first matrix is made. True when the
/// kernels were replaced.
let blasConfigured: Bool = cgsl_blas_configure() != 0

/// Which BLAS GSLKit is linked against.
public enum BLAS {
    /// `openblas` or `gslcblas`.
    public static var name: String { String(cString: cgsl_blas_name()) }

    /// True for an optimized BLAS (OpenBLAS), whose level-3 kernels beat
    /// GSLKit's own; false for GSL's reference CBLAS.
    public static let isOptimized: Bool = name == "openblas"

    /// The kernels in use: OpenBLAS's core name, chosen for the CPU when the library loads
    /// ("Haswell", "Zen", "SkylakeX", …; the environment variable `OPENBLAS_CORETYPE`
    /// forces one), or "reference" for GSL's CBLAS. Runs with the same config and seed give
    /// the same bytes for the same kernels; other kernels round differently (README
    /// "Reproducibility").
    public static var kernel: String {
        _ = blasConfigured
        return String(cString: cgsl_blas_kernel())
    }

    /// True when OpenBLAS did not know this CPU and fell back to its SSE3 "Prescott"
    /// kernels, and GSLKit chose kernels the CPU supports instead (Haswell for AVX2 + FMA,
    /// also on AVX-512 CPUs, as AMD Zen machines run them; Sandybridge for AVX) before the
    /// first BLAS call. Setting `OPENBLAS_CORETYPE` (even to `Prescott`) leaves the choice
    /// to OpenBLAS.
    public static var kernelChosenByWNFlow: Bool { blasConfigured }

    /// Who chose the kernels: `wnflow` when `kernelChosenByWNFlow`, else the library's
    /// `name` (`openblas`, `gslcblas`); `kernel_chosen_by` in `result.json` and `wnflow bench`.
    public static var kernelChooser: String { kernelChosenByWNFlow ? "wnflow" : name }

    /// The OpenBLAS kernels that replace a "Prescott" fallback on this x86-64 CPU and OS
    /// (`Haswell`, `Sandybridge`); nil elsewhere, on older CPUs and with GSL's CBLAS.
    public static var bestKernelForCPU: String? { cgsl_blas_best_x86_core().map { String(cString: $0) } }

    /// The library's own description of its build ("OpenBLAS 0.3.21 … Zen MAX_THREADS=64").
    public static var configuration: String { String(cString: cgsl_blas_config()) }

    /// `{"library", "kernel", "config", "kernel_chosen_by"}`: what `result.json`'s `blas`
    /// field records (`kernel_chosen_by`: `openblas`, or `wnflow` when
    /// `kernelChosenByWNFlow`).
    public static var provenance: [(String, String)] {
        [("library", name), ("kernel", kernel), ("config", configuration),
         ("kernel_chosen_by", kernelChooser)]
    }

    /// Applies the BLAS configuration now (it is otherwise applied before
    /// the first GSL call): single-threaded, idle OpenBLAS threads stopped.
    public static func configure() { _ = blasConfigured }

    /// Sets the number of BLAS threads (process-wide; OpenBLAS only). More
    /// than one thread can change the last bits of results (seen at
    /// N = 2000), so WNFlow keeps 1 unless `WNFLOW_BLAS_THREADS` asks.
    public static func setThreads(_ k: Int) {
        _ = blasConfigured
        cgsl_blas_set_threads(Int32(k))
    }
}

/// Throws a `GSLError` for any status other than `GSL_SUCCESS`.
@inline(__always)
func check(_ status: Int32, _ context: @autoclosure () -> String) throws {
    if status != 0 { throw GSLError(code: status, context: context()) }
}
