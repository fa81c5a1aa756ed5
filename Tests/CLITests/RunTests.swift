import Foundation
import Testing

@Suite("simulate: files, determinism, failures")
struct RunTests {
    @Test("two runs of the same config are byte-identical apart from wall_seconds")
    func determinism() throws {
        let dir = CLI.tempDir("det")
        CLI.write(CLI.smallWNConfig(points: 25), dir + "/c.json")
        for k in 1...2 {
            let r = try CLI.run(["simulate", dir + "/c.json", "--out", dir + "/o\(k)", "--quiet"])
            #expect(r.code == 0, "\(r.stderr)")
        }
        func stripped(_ p: String) throws -> String {
            try String(contentsOfFile: p, encoding: .utf8).split(separator: "\n").filter { !$0.contains("wall_seconds") }.joined(separator: "\n")
        }
        #expect(try stripped(dir + "/o1/result.json") == stripped(dir + "/o2/result.json"))
        #expect(try String(contentsOfFile: dir + "/o1/trajectory.csv", encoding: .utf8) == String(contentsOfFile: dir + "/o2/trajectory.csv", encoding: .utf8))
    }

    @Test("result.json records the BLAS kernels; OPENBLAS_CORETYPE changes them, and may change the steps, not the limit")
    func blasProvenance() throws {
        let dir = CLI.tempDir("blas")
        CLI.write(CLI.smallWNConfig(points: 0), dir + "/c.json")
        func result(_ out: String, _ env: [String: String]) throws -> [String: Any] {
            let r = try CLI.run(["simulate", dir + "/c.json", "--out", dir + "/" + out, "--quiet"], environment: env)
            #expect(r.code == 0, "\(r.stderr)")
            return try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + out + "/result.json"))) as? [String: Any] ?? [:]
        }
        let own = try result("own", [:])
        let blas = own["blas"] as? [String: String] ?? [:]
        #expect(!(blas["kernel"] ?? "").isEmpty && !(blas["library"] ?? "").isEmpty && !(blas["config"] ?? "").isEmpty, "\(blas)")
        // Forcing kernels needs OpenBLAS built with DYNAMIC_ARCH (Debian's is); "Prescott"
        // (SSE3) names kernels of x86-64 builds only. GSL's CBLAS has one kernel.
        #if arch(x86_64)
        let x86 = true
        #else
        let x86 = false
        #endif
        guard blas["library"] == "openblas", x86, (blas["config"] ?? "").contains("DYNAMIC_ARCH") else { return }
        let forced = try result("forced", ["OPENBLAS_CORETYPE": "Prescott"])
        #expect((forced["blas"] as? [String: String])?["kernel"] == "Prescott")
        let z0 = own["z"] as? [Double] ?? [], z1 = forced["z"] as? [Double] ?? []
        #expect(z0.count == 20 && z1.count == 20)
        let d = zip(z0, z1).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        let n = z0.map { $0 * $0 }.reduce(0, +).squareRoot()
        #expect(d <= 1e-8 * n, "limits differ by \(d / n) between kernels")
    }

    @Test("predict --limit-only writes the same limit as predict, with the LP fields null")
    func predictLimitOnly() throws {
        let dir = CLI.tempDir("limit-only")
        CLI.write(CLI.smallWNConfig(points: 0), dir + "/c.json")
        let full = try CLI.run(["predict", dir + "/c.json", "--out", dir + "/full.json", "--quiet"])
        let fast = try CLI.run(["predict", dir + "/c.json", "--out", dir + "/fast.json", "--limit-only"])
        #expect(full.code == 0 && fast.code == 0, "\(full.stderr) \(fast.stderr)")
        #expect(fast.stdout.contains("not checked (--limit-only)"))
        func object(_ p: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: p))) as? [String: Any] ?? [:]
        }
        let a = try object(dir + "/full.json"), b = try object(dir + "/fast.json")
        #expect(a["z"] as? [Double] == b["z"] as? [Double])
        #expect(a["g_inf"] as? Double == b["g_inf"] as? Double)
        #expect(a["kernel_positive"] as? Bool != nil && b["kernel_positive"] is NSNull)
        #expect(a["l1_min"] as? Double != nil && b["l1_min"] is NSNull)
        #expect(b["limit_only"] as? Bool == true)
    }

    @Test("a forced integration failure exits 3 and keeps a readable partial trajectory")
    func integrationFailure() throws {
        let dir = CLI.tempDir("fail")
        // Gradient descent with a step far beyond 2/λ_max diverges to Inf.
        CLI.write("""
        {"problem": {"A": [[3.0, 1.0], [1.0, 2.0]], "y": [1.0, 1.0]},
         "model": {"flow": "gd", "depth": 1, "step": 5.0},
         "init": {"x0": [1.0, 1.0]},
         "integrator": {"t_end": 100000},
         "record": {"times": [5, 10, 15, 20, 25, 30]}}
        """, dir + "/c.json")
        let r = try CLI.run(["simulate", dir + "/c.json", "--out", dir + "/o"])
        #expect(r.code == 3, "exit \(r.code): \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        let result = try String(contentsOfFile: dir + "/o/result.json", encoding: .utf8)
        #expect(result.contains("\"status\": \"failed\""))
        let csv = try String(contentsOfFile: dir + "/o/trajectory.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count >= 3)
        #expect(csv[0].hasPrefix("t,loss,g,v_norm,x_1"))
    }

    @Test("an ODE that overflows fails cleanly with exit 3")
    func odeOverflow() throws {
        let dir = CLI.tempDir("ovf")
        CLI.write("""
        {"problem": {"A": [[1e150, 1.0]], "y": [1.0]},
         "model": {"flow": "gf", "depth": 1},
         "init": {"x0": [1.0, 1.0]},
         "integrator": {"method": "rkf45", "t_end": 10}}
        """, dir + "/c.json")
        let r = try CLI.run(["simulate", dir + "/c.json", "--out", dir + "/o"])
        #expect(r.code == 3, "exit \(r.code): \(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/o/result.json"))
    }

    @Test("every example config runs")
    func examples() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent("Examples/configs").path
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".json") }.sorted()
        #expect(files.count >= 5)
        for f in files {
            let dir = CLI.tempDir("ex")
            let r = try CLI.run(["simulate", folder + "/" + f, "--out", dir, "--quiet"])
            #expect(r.code == 0, "\(f): exit \(r.code) \(r.stderr)")
        }
    }
}

@Suite("verify: exit codes")
struct VerifyCLITests {
    /// Until stop 32 it failed lemma-3.2-norm (the flow's constant ‖v‖, which WN-GD does not
    /// keep); now that row checks WN-GD's own identity and passes, the flow's drift measured.
    @Test("verify on WN-GD stopped at t_end exits 1 for limit-residual alone; on the WN flow it exits 0")
    func wnGDFailsNorm() throws {
        let dir = CLI.tempDir("verify")
        let base = """
        {"problem": {"generate": {"M": 8, "N": 20, "sparsity": 3, "seed": 5}},
         "model": {"flow": "FLOW", "depth": 2, "eta_g": 0.2, "step": 0.05},
         "init": {"scale": 0.1, "direction": "uniform"},
         "integrator": {"t_end": 3000}}
        """
        CLI.write(base.replacingOccurrences(of: "FLOW", with: "wn-gd"), dir + "/gd.json")
        let r = try CLI.run(["verify", dir + "/gd.json", "--out", dir + "/gd", "--quiet"])
        #expect(r.code == 1, "exit \(r.code): \(r.stderr)")
        #expect(r.stderr.contains("1 check(s) failed: limit-residual"), "\(r.stderr)")
        let report = try String(contentsOfFile: dir + "/gd/report.md", encoding: .utf8)
        #expect(report.contains("lemma-3.2-norm") && report.contains("drifted by") && report.contains("measured, not judged"))
        CLI.write(base.replacingOccurrences(of: "FLOW", with: "wn").replacingOccurrences(of: "\"t_end\": 3000", with: "\"t_end\": 1e12"), dir + "/wn.json")
        let ok = try CLI.run(["verify", dir + "/wn.json", "--out", dir + "/wn", "--quiet"])
        #expect(ok.code == 0, "exit \(ok.code): \(ok.stderr)")
    }

    @Test("the structured Rosenbrock solver passes the same monitor checks")
    func rosenbrockPassesMonitor() throws {
        let dir = CLI.tempDir("rosen")
        for flow in ["gf", "wn"] {
            CLI.write("""
            {"problem": {"generate": {"M": 8, "N": 20, "sparsity": 3, "seed": 6}},
             "model": {"flow": "\(flow)", "depth": 2, "eta_g": 0.2},
             "init": {"scale": 0.1, "direction": "uniform"},
             "integrator": {"method": "rosenbrock"}}
            """, dir + "/\(flow).json")
            let r = try CLI.run(["verify", dir + "/\(flow).json", "--out", dir + "/\(flow)", "--quiet"])
            #expect(r.code == 0, "\(flow): exit \(r.code): \(r.stderr)")
        }
    }
}
