#!/usr/bin/env python3
"""Compare wnflow with scipy's solve_ivp on the same CONFIG.json files.

For each config, wnflow integrates it (writing the exact problem it solved
with --write-problem; --no-monitor, best wall time of 3 to 10 runs, as for the peers, and
of one more run before each repeated peer run, so that both sides sample the same phases
of a shared machine); scipy then integrates the same problem from the same
start with LSODA and BDF (both with the analytic Jacobian) and DOP853, to the
same stop criterion (loss below the same threshold, as a terminal event). One
table of wnflow/peer ratios (wall time, RHS evaluations) and the distance
between the limits is printed from this single invocation.

Usage: python3 Benchmarks/compare_scipy.py [--wnflow PATH] [--quick] [CONFIG.json ...]
Needs only numpy and scipy (installed by `make bench`).
"""
import argparse
import glob
import json
import os

# numpy single-threaded, like wnflow. With two OpenBLAS threads on a 2-core
# machine where another process held a core, LSODA on wn3 took 12.9 s instead
# of 0.90 s (its threads spin while waiting): the peers' timings were noise.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.integrate import ode, solve_ivp

HERE = os.path.dirname(os.path.abspath(__file__))


class Budget(Exception):
    pass


class Problem:
    """½‖A x^L − y‖² and its flows, mirroring MATH.md §1 and §6."""

    def __init__(self, pj, cfg):
        A = np.array(pj["A"], dtype=float)
        self.signed = bool(pj["signed"])
        self.A = np.hstack([A, -A]) if self.signed else A
        self.y = np.array(pj["y"], dtype=float)
        self.L = int(pj["depth"])
        self.x0 = np.array(pj["x0"], dtype=float)
        model = cfg.get("model", {})
        self.flow = model.get("flow", "gf")
        self.eta_g = float(model.get("eta_g", model.get("eta", 0.05)))
        self.eta_v = float(model.get("eta_v", 1.0))
        self.nfev = 0
        self.njev = 0
        self.max_evals = None

    def count(self):
        self.nfev += 1
        if self.max_evals is not None and self.nfev > self.max_evals:
            raise Budget()

    def grad(self, x):
        L = self.L
        e = self.A @ x**L - self.y
        r = self.A.T @ e
        return L * x ** (L - 1) * r, e, r

    def hess(self, x, r):
        L = self.L
        B = self.A * (x ** (L - 1))[None, :]
        H = L * L * (B.T @ B)
        if L >= 2:
            H[np.diag_indices_from(H)] += L * (L - 1) * x ** (L - 2) * r
        return H

    def loss_of_state(self, s):
        x = self.weights(s)
        e = self.A @ x**self.L - self.y
        return 0.5 * e @ e

    def weights(self, s):
        if self.flow == "gf":
            return s
        return s[0] * s[1:] / np.linalg.norm(s[1:])

    def initial_state(self):
        if self.flow == "gf":
            return self.x0.copy()
        g0 = np.linalg.norm(self.x0)
        return np.concatenate([[g0], self.x0 / g0])

    def eta(self, g, nv2):
        return self.eta_v * g * g / nv2 if self.flow == "wn-timedep" else self.eta_g

    def rhs(self, t, s):
        self.count()
        if self.flow == "gf":
            return -self.grad(s)[0]
        g, v = s[0], s[1:]
        nv2 = v @ v
        nv = np.sqrt(nv2)
        u = v / nv
        G = self.grad(g * u)[0]
        sg = G @ u
        return np.concatenate([[-self.eta(g, nv2) * sg], -self.eta_v * (g / nv) * (G - sg * u)])

    def fast_gf(self):
        """rhs, jac and loss for GF as allocation-light closures (the same formulas as rhs, jac
        and loss_of_state): the peers' time should be scipy's, not this script's Python. On GF
        alpha = 0.1 / 1e-3 they took LSODA from 83 / 96 ms to 73 / 81 ms (best of 20, interleaved)
        with identical step and evaluation counts."""
        A, y, L = np.ascontiguousarray(self.A), self.y, self.L

        def rhs(t, x):
            self.count()
            xl1 = x if L == 2 else x ** (L - 1)
            e = A @ (xl1 * x)
            e -= y
            r = e @ A
            r *= xl1
            r *= -L
            return r

        def jac(t, x):
            self.njev += 1
            xl1 = x if L == 2 else x ** (L - 1)
            B = A * xl1
            e = A @ (xl1 * x)
            e -= y
            J = B.T @ B
            J *= -(L * L)
            if L >= 2:
                d = (e @ A) * (L * (L - 1))
                if L > 2:
                    d *= x ** (L - 2)
                J.flat[:: J.shape[0] + 1] -= d
            return J.T  # symmetric: a Fortran-ordered view, no copy for LSODA

        def loss(x):
            e = A @ ((x if L == 2 else x ** (L - 1)) * x)
            e -= y
            return 0.5 * (e @ e)

        return rhs, jac, loss

    def functions(self):
        """(rhs, jac, loss of state) as the peers get them."""
        if self.flow == "gf":
            return self.fast_gf()
        return self.rhs, self.jac, self.loss_of_state

    def jac(self, t, s):
        self.njev += 1
        if self.flow == "gf":
            _, _, r = self.grad(s)
            return -self.hess(s, r)
        g, v = s[0], s[1:]
        n = v.size
        nv2 = v @ v
        nv = np.sqrt(nv2)
        u = v / nv
        x = g * u
        G, _, r = self.grad(x)
        H = self.hess(x, r)
        Hu = H @ u
        uHu = u @ Hu
        sg = G @ u
        w = G - sg * u
        Pi = np.eye(n) - np.outer(u, u)
        piHu = Hu - uHu * u
        eg = self.eta(g, nv2)
        J = np.empty((n + 1, n + 1))
        dsdv = (g / nv) * piHu + w / nv
        J[0, 0] = -eg * uHu
        J[0, 1:] = -eg * dsdv
        if self.flow == "wn-timedep":
            J[0, 0] -= sg * 2 * self.eta_v * g / nv2
            J[0, 1:] += sg * 2 * self.eta_v * g * g * v / nv2**2
        J[1:, 0] = -self.eta_v * (w + g * piHu) / nv
        PHP = Pi @ H @ Pi
        J[1:, 1:] = -self.eta_v * (g / nv) ** 2 * PHP + self.eta_v * (g / nv2) * (
            np.outer(w, u) + np.outer(u, w) + sg * Pi)
        return J


def lsoda_steps(fun, jac, loss, y0, t_end, rtol, atol, threshold, deadline):
    """scipy's LSODA with the analytic Jacobian, one step per call (ITASK 5, TCRIT = t_end, as
    solve_ivp's LSODA wrapper drives it) but without solve_ivp's per-step machinery, stopped at
    the first step whose end has loss <= threshold (wnflow's rule). The same steps and
    evaluations as solve_ivp's LSODA; on GF alpha = 0.1 / 1e-3 44 / 42 ms against 73 / 81 ms
    (best of 20, interleaved). `ode(...).integrate(t, step=True)` does not step LSODA in
    scipy 1.17 (it runs to t), hence the ITASK setting."""
    r = ode(fun, jac).set_integrator("lsoda", rtol=rtol, atol=atol)
    r.set_initial_value(y0, 0.0)
    itg = r._integrator
    itg.rwork[0] = t_end
    itg.call_args[4] = itg.rwork
    itg.call_args[2] = 5
    y, t = r._y, 0.0
    while t < t_end:
        y, t = itg.run(fun, jac, y, t, t_end, (), ())
        if itg.istate < 0:
            return "failed", y
        if loss(y) <= threshold:
            return "converged", y
        if time.perf_counter() > deadline:
            raise Budget()
    return "t_end", y


def repeats_for(wall):
    """How many runs the best wall time is taken over, the same rule for wnflow and the peers:
    as many as fit in about 1 s, at least 3 and at most 10, and 1 when a run takes >= 2 s
    (this shared machine has slow phases of 0.1 s to seconds; 3 runs of a 5 ms case could all
    fall into one)."""
    if wall >= 2.0:
        return 1
    return int(min(10, max(3, 1.0 / max(wall, 1e-9))))


def wnflow_once(binary, config, out):
    """One wnflow simulate without the monitor (the peers run none); its result.json."""
    subprocess.run([binary, "simulate", config, "--out", out, "--quiet", "--write-problem", "--no-monitor"],
                   check=True)
    with open(os.path.join(out, "result.json")) as f:
        return json.load(f)


def faster(a, b):
    """The wnflow result with the smaller wall time."""
    return b if b["stats"]["wall_seconds"] < a["stats"]["wall_seconds"] else a


def run_wnflow(binary, config, out):
    """wnflow's best wall of `repeats_for` runs, and the problem it wrote."""
    best = wnflow_once(binary, config, out)
    k = 1
    while k < repeats_for(best["stats"]["wall_seconds"]):
        best = faster(best, wnflow_once(binary, config, out))
        k += 1
    with open(os.path.join(out, "problem.json")) as f:
        pj = json.load(f)
    return best, pj


def run_peer(prob, method, cfg, threshold, max_evals, max_seconds):
    it = cfg.get("integrator", {})
    rtol = float(it.get("rtol", 1e-10))
    atol = float(it.get("atol", 1e-18))
    t_end = float(it.get("t_end", 1e12))
    prob.nfev = 0
    prob.njev = 0
    prob.max_evals = max_evals
    deadline = time.perf_counter() + max_seconds
    fun, jac, loss = prob.functions()

    def event(t, s):
        if time.perf_counter() > deadline:
            raise Budget()
        return loss(s) - threshold

    event.terminal = True
    kwargs = dict(rtol=rtol, atol=atol, events=event)
    if method in ("LSODA", "BDF", "Radau"):
        kwargs["jac"] = jac
    t0 = time.perf_counter()
    status = "converged"
    try:
        if method == "LSODA-step":
            status, s = lsoda_steps(fun, jac, loss, prob.initial_state(), t_end, rtol, atol, threshold, deadline)
        else:
            sol = solve_ivp(fun, (0.0, t_end), prob.initial_state(), method=method, **kwargs)
            s = sol.y[:, -1]
            if sol.status == -1:
                status = "failed"
            elif sol.status == 0:
                status = "t_end"
    except Budget:
        status = "budget"
        s = None
    wall = time.perf_counter() - t0
    z = None
    if s is not None:
        x = prob.weights(s)
        p = x**prob.L
        n = p.size // 2
        z = p[:n] - p[n:] if prob.signed else p
    return dict(status=status, wall=wall, nfev=prob.nfev, njev=prob.njev, z=z)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="*")
    ap.add_argument("--wnflow", default=os.path.join(HERE, "..", ".build", "release", "wnflow"))
    ap.add_argument("--quick", action="store_true", help="skip DOP853 and cap peers at 30 s")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="wall budget per peer run")
    ap.add_argument("--json", help="also write the rows as JSON to this file")
    args = ap.parse_args()
    configs = args.configs or sorted(glob.glob(os.path.join(HERE, "configs", "*.json")))
    methods = ["LSODA", "LSODA-step", "BDF"] + ([] if args.quick else ["DOP853"])
    max_seconds = 30.0 if args.quick else args.max_seconds
    rows = []
    print(f"{'case':<18} {'peer':<7} {'peer status':<11} {'peer evals':>11} {'peer jac':>9} {'peer s':>9} "
          f"{'wnflow evals':>12} {'wnflow s':>9} {'wall ratio':>10} {'speedup':>8} {'evals ratio':>11} {'|z−z_peer|/|z|':>15}")
    for config in configs:
        with open(config) as f:
            cfg = json.load(f)
        name = os.path.splitext(os.path.basename(config))[0]
        tmp_dir = tempfile.TemporaryDirectory()
        tmp = tmp_dir.name
        res, pj = run_wnflow(args.wnflow, config, tmp)
        prob = Problem(pj, cfg)
        stop = cfg.get("integrator", {}).get("stop", {})
        threshold = float(stop.get("loss_below", 1e-24 * 0.5 * float(prob.y @ prob.y)))
        zw = np.array(res["z"])
        for m in methods:
            # Each row: wnflow and the peer the same number of runs, alternating, best of each.
            # (Before: wnflow's best carried over from its 3-10 runs up front and from every
            # earlier row, so it was the best of 19-21 runs against the peer's 3-10.)
            res = wnflow_once(args.wnflow, config, tmp)
            peer = run_peer(prob, m, cfg, threshold, max_evals=50_000_000, max_seconds=max_seconds)
            k = 1
            while peer["status"] == "converged" and k < repeats_for(max(peer["wall"], res["stats"]["wall_seconds"])):
                res = faster(res, wnflow_once(args.wnflow, config, tmp))
                again = run_peer(prob, m, cfg, threshold, max_evals=50_000_000, max_seconds=max_seconds)
                k += 1
                if again["wall"] < peer["wall"]:
                    peer = again
            st = res["stats"]
            ratio_wall = st["wall_seconds"] / peer["wall"] if peer["wall"] > 0 else float("nan")
            ratio_evals = st["rhs_evals"] / max(peer["nfev"], 1)
            dz = float(np.linalg.norm(zw - peer["z"]) / np.linalg.norm(zw)) if peer["z"] is not None else float("nan")
            rows.append(dict(case=name, peer=m, peer_status=peer["status"], peer_rhs_evals=peer["nfev"],
                             peer_jacobian_evals=peer["njev"], peer_wall_seconds=peer["wall"],
                             wnflow_status=res["status"], wnflow_rhs_evals=st["rhs_evals"],
                             wnflow_wall_seconds=st["wall_seconds"], wall_ratio=ratio_wall,
                             evals_ratio=ratio_evals, limit_difference=dz, runs_each=k))
            print(f"{name:<18} {m:<7} {peer['status']:<11} {peer['nfev']:>11} {peer['njev']:>9} {peer['wall']:>9.3f} "
                  f"{st['rhs_evals']:>12} {st['wall_seconds']:>9.4f} {ratio_wall:>10.4f} {1 / ratio_wall:>7.1f}x {ratio_evals:>11.3f} {dz:>15.2e}",
                  flush=True)
        tmp_dir.cleanup()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print("\nwall ratio = wnflow wall / peer wall (below 1: wnflow faster), speedup = its inverse; "
          "evals ratio = wnflow RHS evals / peer RHS evals. 'budget': the peer was stopped at its time budget.\n"
          "wnflow: simulate --no-monitor; each row: wnflow and the peer alternately, best wall of the same number of runs each "
          "(as many as fit in ~1 s, 3 to 10; 1 when a run takes >= 2 s); LSODA-step: scipy's LSODA stepped directly (same steps "
          "and evaluations as LSODA, without solve_ivp's per-step overhead), stopped at the first step end below the threshold; "
          "same problem, start, tolerances and stop.")


if __name__ == "__main__":
    sys.exit(main())
