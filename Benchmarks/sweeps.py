#!/usr/bin/env python3
"""The configuration sweeps behind README "How far `predict` covers the flows" and the
verify counts in the issue notes: every run of a grid through the wnflow CLI, printing
the configurations that disagree and a total.

  predict        `predict --limit-only` against `simulate --no-monitor` on 624 configs
                 (grid A: 240, depths 2-3, GF and WN with eta_g 0.01-1; grid B: 384,
                 depths 1-4, plain and signed, GF, WN 0.05/0.5 and the Thm 2.4 rate).
                 Flagged: predict fails, or max|z_pred - z_sim| / max|z_sim| > 1e-7.
                 A run that ends with g < 0 (depth 1) is compared with `negative_branch`.
  verify         `wnflow verify` on 480 configs (depths 1-4; GF, WN 0.01/0.05/0.3, the
                 Thm 2.4 rate; init 1e-3 ... 3). Flagged: any failed check or exit != 0.
  verify-signed  the same grid with "signed": true.
  verify-deep    `wnflow verify` on 288 WN configs at depths 5-6 (M/N 25/100, 10/25, 20/60;
                 eta_g 0.01/0.05/0.3 and the Thm 2.4 rate; init 1e-3, 0.03, 1; plain and
                 signed): the evidence for `bdf` with checked solves on deeper WN (stop 22;
                 rerun with --method bsimp / msbdf for the solvers it replaced).
  verify-deep-large  `wnflow verify` on 12 depth-5 WN configs at N = 1200 and 2000 (M = N/4;
                 eta_g 0.05/0.3; init 1e-3, 0.03, 1): the evidence for `bdf` with checked
                 solves up to dimension 5000 (stop 23; --method msbdf for what it replaced:
                 about 20 minutes here).

Usage: python3 Benchmarks/sweeps.py {predict,verify,verify-signed,verify-deep,verify-deep-large} [--wnflow PATH] [--out DIR]
       [--limit K] [--method METHOD]
Standard library only. Runs one configuration at a time (about 5-10 minutes a grid here).
"""
import argparse
import itertools
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def config(m, n, s, pseed, model, scale, direction, iseed, method="auto"):
    return {"problem": {"generate": {"M": m, "N": n, "sparsity": s, "seed": pseed}},
            "model": model,
            "init": {"scale": scale, "direction": direction, "root_of_depth": True, "seed": iseed},
            "integrator": {"method": method}, "record": {"points": 0}}


def model(flow, depth, eta=None, signed=None):
    m = {"flow": flow, "depth": depth}
    if eta is not None:
        m["eta_g"] = eta
    if signed is not None:
        m["signed"] = signed
    return m


def predict_grid():
    sizes = [(25, 100, 6), (40, 100, 5), (10, 25, 2)]
    flows = [("gf", None), ("wn", 0.01), ("wn", 0.05), ("wn", 0.3), ("wn", 1.0)]
    for (m, n, s), depth, (f, e), a, d in itertools.product(sizes, [2, 3], flows, [1e-3, 0.03, 1, 3],
                                                           ["uniform", "abs-gaussian"]):
        yield config(m, n, s, 2, model(f, depth, e), a, d, 5), 60
    flows = [("gf", None), ("wn-timedep", None), ("wn", 0.05), ("wn", 0.5)]
    for (m, n, s), depth, signed, (f, e), a, d in itertools.product([(25, 100, 6), (10, 25, 2)], [1, 2, 3, 4],
                                                                   [False, True], flows, [0.01, 1, 3],
                                                                   ["uniform", "abs-gaussian"]):
        yield config(m, n, s, 3, model(f, depth, e, signed), a, d, 5), 30


def verify_grid(signed):
    sizes = [(25, 100, 6), (40, 100, 5), (10, 25, 2)]
    flows = [("gf", None), ("wn", 0.01), ("wn", 0.05), ("wn", 0.3), ("wn-timedep", None)]
    # Depth 4 last, so that a run with --limit 360 is the grid of stops 19-20.
    for depth, (m, n, s), (f, e), a, d in itertools.product([1, 2, 3, 4], sizes, flows, [1e-3, 0.03, 1, 3],
                                                           ["uniform", "abs-gaussian"]):
        yield config(m, n, s, 4, model(f, depth, e, True if signed else None), a, d, 6), 60


def verify_deep_grid():
    sizes = [(25, 100, 6), (10, 25, 2), (20, 60, 3)]
    flows = [("wn", 0.01), ("wn", 0.05), ("wn", 0.3), ("wn-timedep", None)]
    for depth, (m, n, s), (f, e), a, d, signed in itertools.product([5, 6], sizes, flows, [1e-3, 0.03, 1],
                                                                   ["uniform", "abs-gaussian"], [False, True]):
        yield config(m, n, s, 4, model(f, depth, e, True if signed else None), a, d, 6), 300


def verify_deep_large_grid():
    for n, eta, a in itertools.product([1200, 2000], [0.05, 0.3], [1e-3, 0.03, 1]):
        yield config(n // 4, n, n // 100, 4, model("wn", 5, eta), a, "uniform", 6), 1200


def describe(cfg):
    g, md, it = cfg["problem"]["generate"], cfg["model"], cfg["init"]
    eta = f" eta_g={md['eta_g']}" if "eta_g" in md else ""
    sg = " signed" if md.get("signed") else ""
    return f"M={g['M']} N={g['N']} L={md['depth']}{sg} {md['flow']}{eta} scale={it['scale']} {it['direction']}"


def run(cmd, timeout):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return "timeout"


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def check_predict(wnflow, cfg_path, out, timeout):
    pred_path, sim_dir = os.path.join(out, "p.json"), os.path.join(out, "s")
    for p in (pred_path, os.path.join(sim_dir, "result.json")):
        if os.path.exists(p):
            os.remove(p)
    prc = run([wnflow, "predict", cfg_path, "--out", pred_path, "--limit-only", "--quiet"], timeout)
    src = run([wnflow, "simulate", cfg_path, "--out", sim_dir, "--no-monitor", "--quiet"], timeout)
    s = load(os.path.join(sim_dir, "result.json"))
    if s is None:
        return f"NOSIM rc={src}"
    if prc != 0:
        return f"PREDFAIL rc={prc} sim {s['status']} g {s.get('g')}"
    p = load(pred_path)
    if (s.get("g") or 0) < 0 and p.get("negative_branch"):
        p = p["negative_branch"]
    d = max(abs(a - b) for a, b in zip(p["z"], s["z"])) / max(max(abs(a) for a in s["z"]), 1e-300)
    if d > 1e-7:
        return f"DIFF {d:.1e} sim {s['status']} loss {s['loss']:.1e} g {s.get('g')} g_pred {p.get('g_inf')}"
    return None


def check_verify(wnflow, cfg_path, out, timeout):
    res_dir = os.path.join(out, "v")
    rc = run([wnflow, "verify", cfg_path, "--out", res_dir], timeout)
    r = load(os.path.join(res_dir, "result.json"))
    failed = [c["name"] for c in (r or {}).get("monitor", []) if c.get("passed") is False]
    if rc == 0 and not failed:
        return None
    head = f"rc={rc}"
    if r:
        head += f" {r['status']} {r['method']} loss {r['loss']:.1e}"
    return head + (f" FAIL: {' '.join(failed)}" if failed else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", choices=["predict", "verify", "verify-signed", "verify-deep", "verify-deep-large"])
    ap.add_argument("--wnflow", default=os.path.join(HERE, "..", ".build", "release", "wnflow"))
    ap.add_argument("--out", default=os.path.join("/tmp", "wnflow-sweep"))
    ap.add_argument("--limit", type=int, help="only the first LIMIT configurations")
    ap.add_argument("--method", help="integrator.method for every configuration (default: auto)")
    args = ap.parse_args()
    if not os.access(args.wnflow, os.X_OK):
        sys.exit(f"--wnflow: {args.wnflow} is not an executable; build it with `swift build -c release`")
    os.makedirs(args.out, exist_ok=True)
    if args.sweep == "predict":
        grid = predict_grid()
    elif args.sweep == "verify-deep":
        grid = verify_deep_grid()
    elif args.sweep == "verify-deep-large":
        grid = verify_deep_large_grid()
    else:
        grid = verify_grid(args.sweep == "verify-signed")
    check = check_predict if args.sweep == "predict" else check_verify
    cfg_path = os.path.join(args.out, "config.json")
    total = flagged = 0
    for cfg, timeout in itertools.islice(grid, args.limit):
        if args.method:
            cfg["integrator"]["method"] = args.method
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        verdict = check(args.wnflow, cfg_path, args.out, timeout)
        total += 1
        if verdict:
            flagged += 1
            print(f"{describe(cfg)}: {verdict}", flush=True)
    print(f"{args.sweep}: {total} configurations, {flagged} flagged")


if __name__ == "__main__":
    main()
