"""The experiments and the stimulus engine from Python against the CLI: the same options and seed give
the same result files (JSON numbers within 1e-6 apart from provenance, CSV byte for byte), the
arrays in memory equal the numbers of those files, a drawn stimulus equals the CLI's PNG, bad options
raise idscope.Error with the library's message, and results release their C memory."""
import csv
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import idscope  # noqa: E402

BIN = os.path.join(ROOT, "build", "release", "idscope")


def measure(what, value):
    print("measure: %s %s" % (what, value), flush=True)


def cli(*args):
    p = subprocess.run([BIN] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise AssertionError("idscope %s: exit %d: %s" % (" ".join(map(str, args)), p.returncode, p.stderr.decode()))
    return p.stdout.decode()


def st_read(path):
    """The F32 tensors of a safetensors file (header: 8-byte length, JSON)."""
    with open(path, "rb") as f:
        return st_read_bytes(f.read())


def st_read_bytes(data):
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__" or v["dtype"] != "F32":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[8 + n + a:8 + n + b], np.float32).reshape(v["shape"])
    return out


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def num(s):
    return float("nan") if s == "" else float(s)


class Experiments(unittest.TestCase):
    """Every experiment: Python and the CLI with the same options into two folders."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="idscope-pyexp-")
        cls.m = idscope.load()
        t = cls.tmp
        # the inputs several experiments read, made by the CLI
        cli("ids", "extract", "--out", os.path.join(t, "ids"), "--grid", "2", "--sizes", "1")
        cli("stimuli", "grid", "--out", os.path.join(t, "set"), "--size", "64", "--limit", "8")
        cli("temporal", "extract", "--out", os.path.join(t, "tids"), "--frames", "4")
        cls.ids = os.path.join(t, "ids", "ids.safetensors")
        cls.tids = os.path.join(t, "tids", "temporal.safetensors")
        cls.set = os.path.join(t, "set")

    @classmethod
    def tearDownClass(cls):
        cls.m.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def same_json(self, a, b, where):
        if isinstance(a, dict):
            self.assertEqual(sorted(a), sorted(b), where)
            for k in a:
                if k != "provenance":
                    self.same_json(a[k], b[k], where + "." + k)
        elif isinstance(a, list):
            self.assertEqual(len(a), len(b), where)
            for i, (x, y) in enumerate(zip(a, b)):
                self.same_json(x, y, "%s[%d]" % (where, i))
        elif isinstance(a, float) or isinstance(b, float):
            self.assertLessEqual(abs(a - b), 1e-6, where)
        else:
            self.assertEqual(a, b, where)

    def same_files(self, res, cli_dir):
        """The result's files equal the CLI's (JSON apart from provenance, the rest byte for byte), and
        out= wrote the result's files."""
        want = sorted(f for f in os.listdir(cli_dir) if f != "items.bin")
        self.assertEqual(sorted(res.files), want)
        for f in want:
            with open(os.path.join(cli_dir, f), "rb") as fh:
                theirs = fh.read()
            ours = res.file(f)
            if f.endswith(".json"):
                a, b = json.loads(ours), json.loads(theirs)
                self.same_json(a, b, f)
                self.assertEqual(a["provenance"]["command"], b["provenance"]["command"], f)
                self.assertEqual(a["provenance"].get("options"), b["provenance"].get("options"), f)
            elif f.endswith(".safetensors"):  # the tensors; the metadata holds the provenance
                a, b = st_read_bytes(ours), st_read_bytes(theirs)
                self.assertEqual(sorted(a), sorted(b), f)
                for k in a:
                    np.testing.assert_array_equal(a[k], b[k], f + ":" + k)
            elif not f.endswith(".html"):
                self.assertEqual(ours, theirs, f)
        if res.out:
            for f in want:
                with open(os.path.join(res.out, f), "rb") as fh:
                    self.assertEqual(fh.read(), res.file(f), f)

    def run_both(self, py, args, **opts):
        """CLI `idscope ARGS --out A` and the Python function with out=B."""
        a = os.path.join(self.tmp, "cli-" + self._testMethodName)
        b = os.path.join(self.tmp, "py-" + self._testMethodName)
        cli(*(list(args) + ["--out", a]))
        res = py(self.m, out=b, **opts)
        self.same_files(res, a)
        return res, a

    def test_ids_extract(self):
        res, a = self.run_both(idscope.extract_ids, ["ids", "extract", "--grid", "2", "--sizes", "1,0.5", "--per-pair"],
                               grid=2, sizes=[1.0, 0.5], per_pair=True)
        theirs = st_read(os.path.join(a, "ids.safetensors"))
        for k in ("universal", "x_axis", "y_axis", "per_pair"):
            np.testing.assert_array_equal(getattr(res, k), theirs[k])
        self.assertEqual(res.universal.shape, (self.m.n_layer + 1, 2, 2, 2, self.m.n_embd))
        self.assertEqual(res.grid, 2)
        self.assertEqual(res.provenance["command"], "ids extract")

    def test_swap(self):
        res, a = self.run_both(idscope.swap, ["swap", "--n", "1", "--seed", "3"], n=1, seed=3)
        rows = csv_rows(res.file("swap.csv").decode())
        sets = ["image", "text", "objects"]
        for r in rows:
            l, k = int(r["layer"]), sets.index(r["set"])
            for col in ("left", "right", "diff", "diff_pooled"):
                self.assertLessEqual(abs(getattr(res, col)[l, k] - float(r[col])), 1e-6, col)
        self.assertEqual(res.item_diff.shape[1:], res.diff.shape)

    def test_swap_hue(self):
        self.run_both(idscope.swap, ["swap", "--n", "1", "--hue"], n=1, hue=True)

    def test_steer_belief(self):
        res, _ = self.run_both(idscope.steer_belief, ["steer", "belief", "--ids", self.ids, "--n", "1", "--layers", "1-3"],
                               ids=self.ids, n=1, layers=(1, 3))
        rows = csv_rows(res.file("steer-belief.csv").decode())
        self.assertEqual(len(rows), 3)
        for i, r in enumerate(rows):
            self.assertLessEqual(abs(res.rate_id[i] - float(r["swap_rate_id"])), 1e-4)
            self.assertLessEqual(abs(res.rate_noise[i] - float(r["swap_rate_noise"])), 1e-4)
        self.assertEqual(res.item_swap_id.shape, (res.item_dc.shape[0], 3))

    def test_steer_grid(self):
        res, _ = self.run_both(idscope.steer_grid, ["steer", "grid", "--ids", self.ids, "--n", "1", "--layers", "2",
                                                    "--relation", "above-below"],
                               ids=self.ids, n=1, layers=2, relation="above-below")
        for r in csv_rows(res.file("steer-grid-above_below.csv").decode()):
            self.assertLessEqual(abs(res.delta[int(r["y"]), int(r["x"])] - float(r["delta"])), 1e-6)

    def test_depth(self):
        res, _ = self.run_both(idscope.depth, ["depth", "--ids", self.ids, "--n", "1", "--layers", "1-2"],
                               ids=self.ids, n=1, layers="1-2")
        for i, r in enumerate(csv_rows(res.file("depth.csv").decode())):
            self.assertLessEqual(abs(res.ab_down[i] - float(r["above_below_down"])), 1e-6)
            self.assertLessEqual(abs(res.fb_up[i] - float(r["front_behind_up"])), 1e-6)

    def test_deviation(self):
        res, _ = self.run_both(idscope.deviation, ["deviation", "--ids", self.ids, "--set", self.set],
                               ids=self.ids, set=self.set)
        for r in csv_rows(res.file("deviation.csv").decode()):
            i, l = int(r["item"]), int(r["layer"])
            want, got = num(r["deviation"]), float(res.dev[i, l])
            self.assertTrue((np.isnan(want) and np.isnan(got)) or abs(want - got) <= 1e-6, (i, l))
        self.assertIn("mann_whitney", res.json)

    def test_mask(self):
        res, _ = self.run_both(idscope.mask, ["mask", "--set", self.set, "--random", "2", "--n", "4"],
                               set=self.set, random=2, n=4)
        self.assertEqual(res.lp.shape, (4, 4, 2))
        rows = csv_rows(res.file("mask.csv").decode())
        for j, r in enumerate(rows):
            i, k = divmod(j, 4)
            self.assertLessEqual(abs(res.lp[i, k, 0] - float(r["logp_true"])), 1e-6)
            self.assertEqual(int(res.ok[i, k]), int(r["correct"]))

    def test_temporal_extract(self):
        res, a = self.run_both(idscope.temporal_extract, ["temporal", "extract", "--frames", "4", "--seed", "2"],
                               frames=4, seed=2)
        theirs = st_read(os.path.join(a, "temporal.safetensors"))
        np.testing.assert_array_equal(res.temporal, theirs["temporal"])
        np.testing.assert_array_equal(res.time_axis, theirs["time_axis"])

    def test_temporal_swap(self):
        res, _ = self.run_both(idscope.temporal_swap, ["temporal", "swap", "--frames", "4", "--n", "1"], frames=4, n=1)
        sets = ["image", "text", "objects"]
        for r in csv_rows(res.file("temporal-swap.csv").decode()):
            self.assertLessEqual(abs(res.diff[int(r["layer"]), sets.index(r["set"])] - float(r["diff"])), 1e-6)

    def test_temporal_steer(self):
        res, _ = self.run_both(idscope.temporal_steer, ["temporal", "steer", "--ids", self.tids, "--n", "1", "--factor", "3"],
                               ids=self.tids, n=1, factor=3.0)
        rows = csv_rows(res.file("temporal-steer.csv").decode())
        lo = min(int(r["layer"]) for r in rows)
        self.assertEqual(len(rows), res.d_after.size)
        for r in rows:
            k, f = int(r["layer"]) - lo, int(r["frame"])
            self.assertLessEqual(abs(res.d_after[k, f - 1] - float(r["d_after"])), 1e-6)

    def test_eval(self):
        res, _ = self.run_both(idscope.evaluate, ["eval", "--task", "all", "--n", "6", "--seed", "4"], task="all", n=6, seed=4)
        for i, r in enumerate(csv_rows(res.file("eval.csv").decode())):
            self.assertEqual(int(res.correct[i]), int(r["correct"]))

    def test_compare(self):
        dirs = []
        for i, (acc, score) in enumerate([(0.9, 0.5), (0.7, 0.2), (0.8, 0.4)]):
            d = os.path.join(self.tmp, "run%d" % i)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "summary.json"), "w") as f:
                json.dump({"format": "idscope.summary.v1", "model": "m%d" % i, "belief_accuracy_baseline": acc,
                           "belief_swap_rate_id": 0.5, "belief_swap_rate_noise": 0.1, "score_best": score,
                           "ids_r2_best": 0.9}, f)
            dirs.append(d)
        a = os.path.join(self.tmp, "cli-compare")
        cli("compare", *dirs, "--out", a)
        res = idscope.compare(dirs, out=os.path.join(self.tmp, "py-compare"))
        self.same_files(res, a)
        self.assertAlmostEqual(float(res.rho[0]), 1.0, 12)  # the three scores rank as the accuracies


class Stimuli(unittest.TestCase):
    def test_png_equals_cli(self):
        d = tempfile.mkdtemp(prefix="idscope-pystim-")
        try:
            cli("stimuli", "grid", "--out", os.path.join(d, "cli"), "--size", "96", "--grid", "3", "--limit", "5",
                "--jitter", "0.2", "--seed", "7")
            from PIL import Image
            with open(os.path.join(d, "cli", "manifest.json")) as f:
                man = json.load(f)
            recs = man["items"] if "items" in man else man["records"]
            for k, rec in enumerate(recs[:5]):
                s = idscope.stimulus("grid", index=k, size=96, grid=3, jitter=0.2, seed=7)
                theirs = np.asarray(Image.open(os.path.join(d, "cli", rec["file"])).convert("RGB"))
                np.testing.assert_array_equal(s.image, theirs)
                s.save(os.path.join(d, "ours.png"))
                np.testing.assert_array_equal(np.asarray(Image.open(os.path.join(d, "ours.png")).convert("RGB")), theirs)
            self.assertEqual(s.count, 3 * 3 * 8 * 4)  # ordered cell pairs x sizes
            py = idscope.stimuli("grid", out=os.path.join(d, "py"), size=96, grid=3, limit=5, jitter=0.2, seed=7)
            for rec in recs[:5]:
                with open(os.path.join(d, "cli", rec["file"]), "rb") as a, open(os.path.join(d, "py", rec["file"]), "rb") as b:
                    self.assertEqual(a.read(), b.read())
            self.assertEqual(len(py.get("items", py.get("records", []))), 5)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_annotations(self):
        s = idscope.stimulus("grid", index=0)
        self.assertEqual([o["name"] for o in s.objects], ["red circle", "blue square"])
        a, b = s.objects
        self.assertEqual(s.truth["left_right"], "left" if a["cx"] < b["cx"] else "right")
        m = idscope.stimulus("grid", index=0, variant="mirror")
        np.testing.assert_array_equal(m.image, s.image[:, ::-1])
        self.assertEqual(m.objects[0]["cx"], 224 - a["cx"])
        v = idscope.stimulus("video", index=3, frames=5)
        self.assertEqual(v.frames.shape, (5, 224, 224, 3))
        self.assertIn("before_after", v.truth)
        self.assertEqual(s.objects[0]["color"], [220, 40, 40])


class Errors(unittest.TestCase):
    def test_bad_options(self):
        m = idscope.load()
        cases = [
            (lambda: idscope.swap(m, n=0), "swap: n = '0' is not a whole number in 1..2147483647"),
            (lambda: idscope.swap(m, bogus=1), "swap: unknown option 'bogus'"),
            (lambda: idscope.swap(m, objects="red circle,purple blob"), "purple blob"),
            (lambda: idscope.steer_belief(m, n=1), "steer belief: the option ids is required"),
            (lambda: idscope.steer_grid(m, ids="/nonexistent/ids.safetensors", n=1), "/nonexistent/ids.safetensors"),
            (lambda: idscope.steer_grid(m, ids="x", relation="diagonal"), "relation = 'diagonal' is not one of left-right"),
            (lambda: idscope.depth(m, ids="x", layers="3-1"), "is not a layer L or a band LO-HI"),
            (lambda: idscope.mask(m), "mask: the option set is required"),
            (lambda: idscope.steer_grid(m, ids="x", factor=0.0), "steer grid: factor = '0.0' is not a number in 0..inf"),
            (lambda: idscope.swap(m, set="some/set", objects=["red circle"]), "objects and set exclude each other"),
            (lambda: idscope.evaluate(m, task="sideways"), "task = 'sideways'"),
            (lambda: idscope.run("dance", m), "no experiment 'dance'"),
            (lambda: idscope.stimulus("grid", index=10 ** 6), "item 1000000 is outside the set's 0..959"),
            (lambda: idscope.stimulus("spiral"), "unknown set 'spiral'"),
            (lambda: idscope.stimulus("grid", grid=0), "grid = '0'"),
            (lambda: idscope.compare(["/nonexistent-run"]), "no readable summary.json"),
        ]
        for f, msg in cases:
            with self.assertRaises(idscope.Error) as cm:
                f()
            self.assertIn(msg, str(cm.exception))
        m.close()


class Memory(unittest.TestCase):
    def test_results_release_memory(self):
        """Many results made and dropped: the resident size settles (the C memory goes with them)."""
        m = idscope.load()
        for _ in range(20):  # warm up: allocator pools, the model's pages
            idscope.stimulus("video", index=1, frames=8).frames.sum()
            idscope.evaluate(m, task="left-right", n=2).close()
        before = rss_kib()
        for _ in range(300):
            s = idscope.stimulus("video", index=1, frames=8)  # 8 x 224 x 224 x 3 bytes each (1.2 MB)
            del s
        for _ in range(60):
            r = idscope.evaluate(m, task="left-right", n=2)
            del r
        grown = rss_kib() - before
        measure("RSS growth over 300 stimuli and 60 results (KiB)", grown)
        self.assertLess(grown, 20 * 1024)  # 300 leaked videos would be 360 MB
        m.close()


if __name__ == "__main__":
    unittest.main()
