import Foundation
import GSLKit

/// An `ODESystem` made of closures, with an optional Jacobian.
final class FnSystem: ODESystem {
    typealias RHS = (Double, UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) throws -> Void
    typealias Jac = (Double, UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>,
                     UnsafeMutableBufferPointer<Double>) throws -> Void
    let dimension: Int
    private let f: RHS
    private let jac: Jac?

    init(dimension: Int, rhs: @escaping RHS, jacobian: Jac? = nil) {
        self.dimension = dimension
        self.f = rhs
        self.jac = jacobian
    }

    var hasJacobian: Bool { jac != nil }
    /// What the system declares as `jacobianSpectrumIsReal` (BDF up to order 6).
    var realSpectrum = false
    var jacobianSpectrumIsReal: Bool { realSpectrum }

    func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        try f(t, y, dydt)
    }

    func jacobian(t: Double, y: UnsafeBufferPointer<Double>, dfdy: UnsafeMutableBufferPointer<Double>,
                  dfdt: UnsafeMutableBufferPointer<Double>) throws {
        guard let jac else { throw ODEError.jacobianUnavailable }
        try jac(t, y, dfdy, dfdt)
    }
}

/// A constant-coefficient linear system y' = B y (n × n, row-major B).
func linearSystem(_ b: Matrix) -> FnSystem {
    let n = b.rows
    return FnSystem(dimension: n, rhs: { _, y, dydt in
        for i in 0..<n {
            var s = 0.0
            for j in 0..<n { s += b[i, j] * y[j] }
            dydt[i] = s
        }
    }, jacobian: { _, _, dfdy, dfdt in
        for k in 0..<(n * n) { dfdy[k] = b.storage[k] }
        for i in 0..<n { dfdt[i] = 0 }
    })
}

/// y' = -y.
func decaySystem() -> FnSystem {
    FnSystem(dimension: 1, rhs: { _, y, dydt in dydt[0] = -y[0] },
             jacobian: { _, _, dfdy, dfdt in dfdy[0] = -1; dfdt[0] = 0 })
}

/// Records every step an integrator reports.
final class Recorder: StepObserver {
    struct Entry { var t: Double; var y: [Double]; var h: Double; var saveIndex: Int?; var stepNumber: Int }
    var entries: [Entry] = []
    var stopWhen: ((AcceptedStep) -> Bool)?

    init(stopWhen: ((AcceptedStep) -> Bool)? = nil) { self.stopWhen = stopWhen }

    func observe(_ step: AcceptedStep) -> StepDecision {
        entries.append(Entry(t: step.t, y: Array(step.y), h: step.h, saveIndex: step.saveIndex, stepNumber: step.stepNumber))
        if let stopWhen, stopWhen(step) { return .stop }
        return .proceed
    }
}

/// A test error carrying a payload, to check the exact error comes back.
struct InjectedError: Error, Equatable {
    let tag: String
    let evaluation: Int
}

func maxAbsDiff(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// A Gaussian matrix from a seeded generator.
func gaussianMatrix(_ rows: Int, _ cols: Int, _ rng: RNG) -> Matrix {
    Matrix(rows: rows, cols: cols, storage: rng.gaussians(rows * cols))!
}

/// Test systems with a constant structured Jacobian hand out copies of it.
extension LowRankJacobian {
    /// A Jacobian of the same shape (dimension, Gram block, offset, rank).
    func sameShape() -> LowRankJacobian {
        LowRankJacobian(dimension: dimension, gram: gramMatrix, gramOffset: gramOffset, explicitRank: explicitRank)
    }

    /// Writes this Jacobian's values into `j` (of the same shape).
    func copyValues(into j: LowRankJacobian) {
        j.diagonal = diagonal
        j.gramWeight = gramWeight
        j.gramColumnScale = gramColumnScale
        j.u = u
        j.v = v
    }
}
