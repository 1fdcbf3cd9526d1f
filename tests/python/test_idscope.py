"""The Python package against the golden data, the C engine (through the CLI) and itself.
Measured numbers are printed as "measure: ..." lines."""
import gc
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import idscope  # noqa: E402

SHARED = os.path.abspath(os.environ.get("IDSCOPE_SHARED", os.path.join(ROOT, "..", "shared")))
BIN = os.path.join(ROOT, "build", "release", "idscope")
LLAVA = os.path.join(SHARED, "golden", "llava-tiny")
QWEN = os.path.join(SHARED, "golden", "qwen2vl-tiny")
GEMMA3 = os.path.join(ROOT, "tests", "golden", "gemma3-tiny")
Q3 = os.path.join(ROOT, "tests", "golden", "qwen3vl-tiny")
Q3_TEXT = os.path.join(ROOT, "build", "golden", "qwen3vl-tiny", "text.gguf")  # joined by make
INTERNVL = os.path.join(ROOT, "tests", "golden", "internvl-tiny")


def measure(what, value):
    print("measure: %s %s" % (what, value), flush=True)


def golden_tokens(path):
    """llama.cpp's token chunks of a golden prompt, flattened: -1 on the image rows."""
    with open(path) as f:
        chunks = json.load(f)["chunks"]
    out = []
    for kind, val in chunks:
        out += [-1] * val if kind == "image" else list(val)
    return np.array(out, np.int32)


def read(path):
    with open(path) as f:
        return f.read()


class Golden(unittest.TestCase):
    """run_with_cache equals the golden arrays (HF reference, checked against llama.cpp) to 1e-3."""

    def check(self, name, got, want, tol=1e-3):
        self.assertEqual(got.shape, want.shape, name)
        d = float(np.abs(got.astype(np.float64) - want).max())
        measure("%s max|diff|" % name, "%.3g" % d)
        self.assertLessEqual(d, tol, name)

    def test_llava(self):
        m = idscope.load(os.path.join(LLAVA, "text.gguf"), os.path.join(LLAVA, "mmproj.gguf"))
        logits, cache = m.run_with_cache(read(os.path.join(LLAVA, "prompt.txt")), images=[os.path.join(LLAVA, "image.png")])
        E = os.path.join(LLAVA, "expected")
        resid = np.load(os.path.join(E, "resid.npy"))
        for l in range(m.n_layer):
            self.check("llava blocks.%d.hook_resid_pre" % l, cache["blocks.%d.hook_resid_pre" % l], resid[l])
            self.check("llava blocks.%d.hook_resid_post" % l, cache["blocks.%d.hook_resid_post" % l], resid[l + 1])
        self.check("llava image_embd", cache["image_embd"], np.load(os.path.join(E, "image_embd.npy")))
        vis = np.load(os.path.join(E, "vision_layers.npy"))
        for b in range(vis.shape[0]):
            self.check("llava vision.blocks.%d" % b, cache["vision.blocks.%d" % b], vis[b])
        want = np.load(os.path.join(E, "logits.npy"))
        self.check("llava logits", logits, want)
        self.assertTrue((logits.argmax(1) == want.argmax(1)).all())
        self.assertIs(cache["logits"], logits)
        # the rows: llama.cpp's tokens, image rows with their cells, the token texts
        want_tok = golden_tokens(os.path.join(LLAVA, "tokens.json"))
        self.assertTrue((cache.tokens == want_tok).all())
        self.assertEqual(list(cache.roles[4:6]), ["text", "image"])
        self.assertEqual(int((cache.roles == "image").sum()), 16)
        self.assertEqual(tuple(cache.row_cell[7]), (0, 2))
        self.assertEqual(cache.row_image[7], 0)
        self.assertEqual(cache.row_image[0], -1)
        self.assertEqual(cache.str_tokens[26], " circle")
        self.assertEqual(cache.str_tokens[0], "<s>")
        self.assertTrue((cache.rows == np.arange(42)).all())
        # the pattern: [n_head, rows, keys], causal, rows summing to 1; the alias name
        p = cache["blocks.1.hook_pattern"]
        self.assertEqual(p.shape, (4, 42, 42))
        self.assertLess(np.abs(p.sum(-1) - 1).max(), 1e-5)
        self.assertEqual(float(np.abs(np.triu(p, 1)).max()), 0.0)

    def test_hf_folder_equals_gguf_pair(self):
        # the golden LLaVA pair written as a Hugging Face folder (tests/golden/make_hf.py) runs as the pair
        sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
        import make_hf
        with tempfile.TemporaryDirectory() as d:
            make_hf.llava(LLAVA, d, np.random.default_rng(25))
            prompt, img = read(os.path.join(LLAVA, "prompt.txt")), [os.path.join(LLAVA, "image.png")]
            a = idscope.load(d)
            self.assertEqual((a.arch, a.projector, a.n_layer), ("llama", "mlp", 4))
            la, ca = a.run_with_cache(prompt, images=img)
            b = idscope.load(os.path.join(LLAVA, "text.gguf"), os.path.join(LLAVA, "mmproj.gguf"))
            lb, cb = b.run_with_cache(prompt, images=img)
            self.assertEqual(float(np.abs(la - lb).max()), 0.0)
            for l in range(a.n_layer):
                for k in ("blocks.%d.hook_resid_pre" % l, "blocks.%d.hook_resid_post" % l):
                    self.assertEqual(float(np.abs(ca[k] - cb[k]).max()), 0.0, k)
            self.assertEqual(float(np.abs(ca["image_embd"] - cb["image_embd"]).max()), 0.0)
            a.close()
            b.close()
        with self.assertRaises(ValueError):
            idscope.load(os.path.join(LLAVA, "text.gguf"))

    def test_qwen2vl(self):
        m = idscope.load(os.path.join(QWEN, "text.gguf"), os.path.join(QWEN, "mmproj.gguf"))
        logits, cache = m.run_with_cache(read(os.path.join(QWEN, "prompt.txt")), images=[os.path.join(QWEN, "image.png")])
        E = os.path.join(QWEN, "expected")
        resid = np.load(os.path.join(E, "resid.npy"))
        for l in range(m.n_layer):
            self.check("qwen2vl blocks.%d.hook_resid_pre" % l, cache["blocks.%d.hook_resid_pre" % l], resid[l])
        self.check("qwen2vl blocks.%d.hook_resid_post" % (m.n_layer - 1), cache["blocks.%d.hook_resid_post" % (m.n_layer - 1)],
                   resid[m.n_layer])
        self.check("qwen2vl image_embd", cache["image_embd"], np.load(os.path.join(E, "image_embd.npy")))
        vis = np.load(os.path.join(E, "vision_layers.npy"))
        for b in range(vis.shape[0]):
            self.check("qwen2vl vision.blocks.%d" % b, cache["vision.blocks.%d" % b], vis[b])
        self.check("qwen2vl logits (last 4 rows)", logits[-4:], np.load(os.path.join(E, "logits_last4.npy")))
        self.assertTrue((cache.positions == np.load(os.path.join(E, "positions.npy"))).all())
        self.assertTrue((cache.tokens == golden_tokens(os.path.join(QWEN, "tokens.json"))).all())
        self.assertEqual(cache.str_tokens[14], "<|vision_start|>")
        self.assertEqual(tuple(cache.row_cell[15 + 6]), (1, 2))

    def test_gemma3(self):
        m = idscope.load(os.path.join(GEMMA3, "text.gguf"), os.path.join(GEMMA3, "mmproj.gguf"))
        logits, cache = m.run_with_cache(read(os.path.join(GEMMA3, "prompt.txt")),
                                         images=[os.path.join(GEMMA3, "image.png")])
        E = os.path.join(GEMMA3, "expected")
        resid = np.load(os.path.join(E, "resid.npy"))
        for l in range(m.n_layer):
            self.check("gemma3 blocks.%d.hook_resid_pre" % l, cache["blocks.%d.hook_resid_pre" % l], resid[l])
        self.check("gemma3 blocks.%d.hook_resid_post" % (m.n_layer - 1), cache["blocks.%d.hook_resid_post" % (m.n_layer - 1)],
                   resid[m.n_layer])
        self.check("gemma3 image_embd", cache["image_embd"], np.load(os.path.join(E, "image_embd.npy")))
        self.check("gemma3 logits (last row)", logits[-1], np.load(os.path.join(E, "logits_last.npy")))
        self.assertTrue((cache.tokens == golden_tokens(os.path.join(GEMMA3, "tokens.json"))).all())
        self.assertEqual(cache.str_tokens[5], "<start_of_image>")
        self.assertEqual(cache.str_tokens[22], "<end_of_image>")

    def test_internvl(self):
        m = idscope.load(os.path.join(INTERNVL, "text.gguf"), os.path.join(INTERNVL, "mmproj.gguf"))
        logits, cache = m.run_with_cache(read(os.path.join(INTERNVL, "prompt.txt")),
                                         images=[os.path.join(INTERNVL, "image.png")])
        E = os.path.join(INTERNVL, "expected")
        resid = np.load(os.path.join(E, "resid.npy"))
        for l in range(m.n_layer):
            self.check("internvl blocks.%d.hook_resid_post" % l, cache["blocks.%d.hook_resid_post" % l], resid[l + 1])
        self.check("internvl image_embd", cache["image_embd"], np.load(os.path.join(E, "image_embd.npy")))
        self.check("internvl logits (last row)", logits[-1], np.load(os.path.join(E, "logits_last.npy")))
        self.assertTrue((cache.tokens == golden_tokens(os.path.join(INTERNVL, "tokens.json"))).all())
        # two tiles and the thumbnail, 16 rows each, after <img>: every row knows its tile and cell
        img = np.flatnonzero(cache.roles == "image")
        self.assertEqual(len(img), 48)
        self.assertEqual(cache.str_tokens[img[0] - 1], "<img>")
        self.assertEqual(cache.str_tokens[img[-1] + 1], "</img>")
        self.assertTrue((cache.row_frame[img] == np.repeat([0, 1, 2], 16)).all())
        self.assertEqual(tuple(cache.row_cell[img[16 + 6]]), (1, 2))
        self.assertEqual(int(cache.row_frame[0]), -1)


    @unittest.skipUnless(os.path.exists(Q3_TEXT), "build/golden/qwen3vl-tiny/text.gguf is not built")
    def test_qwen3vl(self):
        m = idscope.load(Q3_TEXT, os.path.join(Q3, "mmproj.gguf"))
        prompt, img = read(os.path.join(Q3, "prompt.txt")), [os.path.join(Q3, "image.png")]
        logits, cache = m.run_with_cache(prompt, images=img)
        resid = np.load(os.path.join(Q3, "expected", "resid.npy"))
        for l in range(m.n_layer):
            self.check("qwen3vl blocks.%d.hook_resid_post" % l, cache["blocks.%d.hook_resid_post" % l], resid[l + 1])
        self.assertTrue((cache.positions == np.load(os.path.join(Q3, "expected", "positions.npy"))).all())
        # an ADD at a DeepStack site is the ADD at the residual layer after its block, bit for bit
        vec = (0.3 * np.sin(np.arange(64))).astype(np.float32)
        for b in range(2):
            a = m.run_with_hooks(prompt, img, edits=[idscope.add("blocks.%d.hook_deepstack" % b, vec, rows="image")],
                                 logits="last")
            r = m.run_with_hooks(prompt, img, edits=[idscope.add("blocks.%d.hook_resid_post" % b, vec, rows="image")],
                                 logits="last")
            self.assertTrue(np.array_equal(a, r))
            self.assertGreater(float(np.abs(a - logits[-1]).max()), 1e-3)
        with self.assertRaises(idscope.Error):
            m.run_with_hooks(prompt, img, edits=[idscope.scale("blocks.2.hook_deepstack", 0.0)])


    def test_mllama(self):
        ml = os.path.join(ROOT, "tests", "golden", "mllama-tiny")
        m = idscope.load(ml)
        self.assertEqual(m.xattn_layers, (1, 4, 6))
        prompt, img = read(os.path.join(ml, "prompt.txt")), [os.path.join(ml, "image.png")]
        logits, cache = m.run_with_cache(prompt, images=img)
        e = os.path.join(ml, "expected")
        resid, xo = np.load(os.path.join(e, "resid.npy")), np.load(os.path.join(e, "xattn_out.npy"))
        for l in range(m.n_layer):
            self.check("mllama blocks.%d.hook_resid_post" % l, cache["blocks.%d.hook_resid_post" % l], resid[l + 1])
        for k, b in enumerate(m.xattn_layers):
            self.check("mllama blocks.%d.hook_xattn_out" % b, cache["blocks.%d.hook_xattn_out" % b], xo[k])
            self.assertEqual(cache["blocks.%d.hook_xattn_gate" % b].shape, (len(resid[0]), 2))
        # the gates zeroed at every cross-attention layer: the text-only run
        off = [idscope.scale("blocks.%d.hook_xattn_gate" % b, 0.0) for b in m.xattn_layers]
        a = m.run_with_hooks(prompt, img, edits=off, logits="last")
        self.assertGreater(float(np.abs(a - logits[-1]).max()), 1e-3)
        with self.assertRaises(idscope.Error):
            m.run_with_hooks(prompt, img, edits=[idscope.scale("blocks.2.hook_xattn_out", 0.0)])


class Hooks(unittest.TestCase):
    """Edits: the same numbers as the C engine through the CLI, and the hook names' meaning."""

    @classmethod
    def setUpClass(cls):
        cls.m = idscope.load(os.path.join(LLAVA, "text.gguf"), os.path.join(LLAVA, "mmproj.gguf"))
        cls.prompt = read(os.path.join(LLAVA, "prompt.txt"))
        cls.images = [os.path.join(LLAVA, "image.png")]
        cls.tmp = tempfile.TemporaryDirectory()
        cls.vec = np.random.default_rng(7).standard_normal(64).astype(np.float32)
        cls.vec_path = os.path.join(cls.tmp.name, "v.npy")
        np.save(cls.vec_path, cls.vec)
        cls.gm = ["-m", os.path.join(LLAVA, "text.gguf"), "--mmproj", os.path.join(LLAVA, "mmproj.gguf"),
                  "--image", cls.images[0]]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def cli(self, *args):
        r = subprocess.run([BIN] + list(args), capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_add_equals_cli_capture(self):
        """An add at one layer: every captured site and the logits equal 'idscope capture --add'."""
        out = os.path.join(self.tmp.name, "add.safetensors")
        self.cli("capture", *self.gm, "--prompt-file", os.path.join(LLAVA, "prompt.txt"), "-o", out,
                 "--sites", "resid,attn_out,mlp_out,attn_probs,logits", "--add", self.vec_path,
                 "--layer", "blocks.2.hook_resid_post", "--positions", "word:circle", "--scale", "0.5")
        c = idscope.load_capture(out)
        e = [idscope.add("blocks.2.hook_resid_post", self.vec, rows="word:circle", scale=0.5)]
        logits, cache = self.m.run_with_cache(self.prompt, images=self.images, edits=e)
        worst = 0.0
        n = 0
        for k in c:
            if k.startswith("blocks."):
                worst = max(worst, float(np.abs(c[k] - cache[k]).max()))
                n += 1
        self.assertEqual(n, 5 * 4)
        worst = max(worst, float(np.abs(c["logits"] - logits).max()))
        measure("python run_with_cache(add) vs idscope capture --add, max|diff| over %d sites and logits" % n, worst)
        self.assertLessEqual(worst, 1e-6)
        hooked = self.m.run_with_hooks(self.prompt, images=self.images, edits=e)
        self.assertLessEqual(float(np.abs(hooked - c["logits"]).max()), 1e-6)
        clean, _ = self.m.run_with_cache(self.prompt, images=self.images, names_filter=[])
        self.assertGreater(float(np.abs(hooked - clean).max()), 1e-2)  # the edit does something
        self.assertEqual(list(c.str_tokens), list(cache.str_tokens))
        self.assertEqual(list(c.roles), list(cache.roles))
        self.assertTrue((c.row_cell == cache.row_cell).all())

    def test_add_equals_cli_ask(self):
        """Candidate log-probabilities with an add (resid layer 3 = blocks.2.hook_resid_post) equal 'idscope ask'."""
        q = "Is the red circle to the left or right of the blue square?"
        out = self.cli("ask", *self.gm, "--question", q, "--choices", "left,right", "-n", "1", "--json",
                       "--add", self.vec_path, "--layer", "3", "--positions", "word:circle", "--scale", "2")
        j = json.loads(out)
        prompt = self.m.prompt(q, 1)
        e = [idscope.add("blocks.2.hook_resid_post", self.vec, rows="word:circle", scale=2.0)]
        with self.m.run(prompt, self.images) as s:
            lp = s.run_with_hooks(e, candidates=["left", "right"])
            lp0 = s.run_with_hooks([], candidates=["left", "right"])
        got = np.array([c["logprob"] for c in j["choices"]])
        got0 = np.array([c["logprob_unedited"] for c in j["choices"]])
        d = float(max(np.abs(got - lp).max(), np.abs(got0 - lp0).max()))
        measure("python candidates vs idscope ask --add (printed to 1e-6) max|diff|", "%.2g" % d)
        self.assertLessEqual(d, 2e-6)
        self.assertGreater(float(np.abs(lp - lp0).max()), 1e-3)

    def test_replace_equals_cli(self):
        """A replace on the image rows: the stream there is the vector, as with 'idscope capture --replace'."""
        out = os.path.join(self.tmp.name, "rep.safetensors")
        self.cli("capture", *self.gm, "--prompt-file", os.path.join(LLAVA, "prompt.txt"), "-o", out, "--layers", "2,3",
                 "--sites", "resid,logits", "--replace", self.vec_path, "--layer", "blocks.1.hook_resid_post",
                 "--positions", "image")
        c = idscope.load_capture(out)
        e = [idscope.replace("blocks.1.hook_resid_post", self.vec, rows="image")]
        logits, cache = self.m.run_with_cache(self.prompt, images=self.images, edits=e)
        img = cache.roles == "image"
        self.assertTrue((cache["blocks.2.hook_resid_pre"][img] == self.vec).all())
        self.assertTrue((c["blocks.2.hook_resid_pre"][img] == self.vec).all())
        self.assertLessEqual(float(np.abs(c["logits"] - logits).max()), 1e-6)
        self.assertLessEqual(float(np.abs(c["blocks.2.hook_resid_post"] - cache["blocks.2.hook_resid_post"]).max()), 1e-6)

    def test_control_vector_equals_cli(self):
        """A control vector exported by 'idscope ids export-cvec': its directions as edits (direction.K after
        block K) give what 'idscope capture --control-vector' gives."""
        ids = os.path.join(self.tmp.name, "ids")
        self.cli("ids", "extract", "-m", os.path.join(LLAVA, "text.gguf"), "--mmproj", os.path.join(LLAVA, "mmproj.gguf"),
                 "--out", ids, "--objects", "red circle,blue square", "--grid", "2", "--sizes", "0.9", "--threads", "2")
        cv = os.path.join(self.tmp.name, "cv.gguf")
        self.cli("ids", "export-cvec", "--ids", os.path.join(ids, "ids.safetensors"), "--from", "0,0", "--to", "1,1",
                 "--scale", "3", "-o", cv)
        edits = idscope.control_vector(cv)
        self.assertEqual([e.name for e in edits], [("resid", 2), ("resid", 3), ("resid", 4)])
        out = os.path.join(self.tmp.name, "cv.safetensors")
        self.cli("capture", *self.gm, "--prompt-file", os.path.join(LLAVA, "prompt.txt"), "-o", out, "--sites", "logits",
                 "--control-vector", cv)
        got = self.m.run_with_hooks(self.prompt, images=self.images, edits=edits)
        self.assertEqual(float(np.abs(idscope.load_capture(out)["logits"] - got).max()), 0.0)
        clean = self.m.run_with_hooks(self.prompt, images=self.images)
        self.assertGreater(float(np.abs(got - clean).max()), 1e-2)
        zero = self.m.run_with_hooks(self.prompt, images=self.images, edits=idscope.control_vector(cv, scale=0.0))
        self.assertTrue((zero == clean).all())
        with self.assertRaisesRegex(idscope.Error, "expected 'controlvector'"):
            idscope.control_vector(os.path.join(LLAVA, "mmproj.gguf"))

    def test_hook_meaning(self):
        """resid_post = resid_pre + attn_out + mlp_out in every block; an add at blocks.2.hook_resid_post moves
        that stream (and blocks.3.hook_resid_pre, the same one) at the word's row only."""
        e = [idscope.add("blocks.2.hook_resid_post", self.vec, rows="word:circle")]
        _, c0 = self.m.run_with_cache(self.prompt, images=self.images)
        _, c1 = self.m.run_with_cache(self.prompt, images=self.images, edits=e)
        for b in range(self.m.n_layer):
            s = c1["blocks.%d.hook_resid_pre" % b] + c1["blocks.%d.hook_attn_out" % b] + c1["blocks.%d.hook_mlp_out" % b]
            self.assertLess(float(np.abs(s - c1["blocks.%d.hook_resid_post" % b]).max()), 1e-5 if b != 2 else 1e9)
        d = c1["blocks.2.hook_resid_post"] - c0["blocks.2.hook_resid_post"]
        self.assertLess(float(np.abs(d[26] - self.vec).max()), 1e-5)
        self.assertEqual(float(np.abs(np.delete(d, 26, 0)).max()), 0.0)
        self.assertTrue((c1["blocks.3.hook_resid_pre"] == c1["blocks.2.hook_resid_post"]).all())
        self.assertTrue((c1["blocks.1.hook_resid_post"] == c0["blocks.1.hook_resid_post"]).all())
        self.assertTrue((c1["blocks.3.hook_mlp_out"][:26] == c0["blocks.3.hook_mlp_out"][:26]).all())
        self.assertGreater(float(np.abs(c1["blocks.3.hook_mlp_out"][26:] - c0["blocks.3.hook_mlp_out"][26:]).max()), 1e-4)
        # idscope's own numbering says the same
        _, c2 = self.m.run_with_cache(self.prompt, images=self.images, names_filter="blocks.2.hook_resid_post",
                                      edits=[idscope.add(("resid", 3), self.vec, rows=26)])
        self.assertTrue((c2["blocks.2.hook_resid_post"] == c1["blocks.2.hook_resid_post"]).all())
        self.assertEqual(set(k for k in c2 if k.startswith("blocks")), {"blocks.2.hook_resid_post"})

    def test_batch_equals_single_runs(self):
        """Variants computed together over one clean run equal one-by-one runs and full recomputation."""
        v = [[], [idscope.add("blocks.0.hook_resid_pre", self.vec, rows="text")],
             [idscope.scale("blocks.1.hook_attn_out", 0.0)],
             [idscope.scale("blocks.2.attn.hook_pattern", 0.5, rows="last")],
             [idscope.replace("blocks.3.hook_mlp_out", np.zeros((2, 64), np.float32), rows=[-2, -1])]]
        with self.m.run(self.prompt, self.images) as s:
            batch = s.run_with_hooks_batch(v, candidates=["left", "right", 1492])
            full = s.run_with_hooks_batch(v, candidates=["left", "right", 1492], full_recompute=True)
            single = np.stack([s.run_with_hooks(x, candidates=["left", "right", 1492]) for x in v])
            last = s.run_with_hooks_batch(v, logits="last")
            clean = s.run_with_hooks([], logits="last")
        self.assertEqual(batch.shape, (5, 3))
        self.assertEqual(float(np.abs(batch - single).max()), 0.0)
        self.assertLess(float(np.abs(batch - full).max()), 1e-4)
        self.assertEqual(float(batch[0, 1]), float(batch[0, 2]))  # "right" is token 1492
        self.assertTrue((last[0] == clean).all())
        for k in range(1, 5):
            self.assertGreater(float(np.abs(last[k] - clean).max()), 1e-4, "variant %d changed nothing" % k)
        # a scale of 1 changes nothing, to the bit
        with self.m.run(self.prompt, self.images) as s:
            one = s.run_with_hooks_batch([[], [idscope.scale("blocks.1.hook_mlp_out", 1.0)]], logits="all")
        self.assertTrue((one[0] == one[1]).all())

    def test_rows(self):
        with self.m.run(self.prompt, self.images) as s:
            self.assertEqual(s.n_rows, 42)
            self.assertEqual(list(s.rows("image")), list(range(5, 21)))
            self.assertEqual(list(s.rows("image:0")), list(range(5, 21)))
            self.assertEqual(list(s.rows("word:circle")), [26])
            self.assertEqual(list(s.rows("last")), [41])
            self.assertEqual(list(s.rows(-1)), [41])
            self.assertEqual(list(s.rows(range(3, 6))), [3, 4, 5])
            self.assertEqual(list(s.rows(slice(-3, None))), [39, 40, 41])
            self.assertEqual(len(s.rows("text")), 26)
            with self.assertRaisesRegex(idscope.Error, "frog"):
                s.rows("word:frog")
            with self.assertRaises(IndexError):
                s.rows([50])
            _, c = s.run_with_cache(rows="word:circle", names_filter=["blocks.0.hook_resid_post", "blocks.0.hook_pattern"])
            self.assertEqual(c["blocks.0.hook_resid_post"].shape, (1, 64))
            self.assertEqual(c["blocks.0.attn.hook_pattern"].shape, (4, 1, 42))
            self.assertEqual(list(c.str_tokens), [" circle"])

    def test_names_and_values_checked(self):
        with self.assertRaisesRegex(ValueError, "unknown hook name"):
            self.m.run_with_hooks(self.prompt, self.images, edits=[idscope.add("blocks.1.resid", self.vec)])
        with self.assertRaisesRegex(ValueError, "block 4 is outside 0..3"):
            self.m.run_with_hooks(self.prompt, self.images, edits=[idscope.add("blocks.4.hook_mlp_out", self.vec)])
        with self.assertRaisesRegex(ValueError, "65 values per row, the hook 64"):
            self.m.run_with_hooks(self.prompt, self.images, edits=[idscope.add("blocks.1.hook_mlp_out", np.ones(65))])
        with self.assertRaisesRegex(ValueError, "finite"):
            idscope.add("blocks.1.hook_mlp_out", [np.nan] * 64)
        with self.assertRaisesRegex(ValueError, "attention probabilities can be captured or scaled"):
            self.m.run_with_hooks(self.prompt, self.images, edits=[idscope.add(("attn_probs", 1), self.vec)])
        with self.assertRaisesRegex(idscope.Error, "frog"):
            self.m.run_with_hooks(self.prompt, self.images,
                                  edits=[idscope.add("blocks.1.hook_mlp_out", self.vec, rows="word:frog")])

    def test_generate_equals_cli(self):
        q = "Is the red circle to the left or right of the blue square?"
        out = self.cli("ask", *self.gm, "--question", q, "-n", "4", "--json")
        self.assertEqual(self.m.generate(self.m.prompt(q, 1), self.images, n=4), json.loads(out)["answer"])
        big = [idscope.add("blocks.3.hook_resid_post", 50 * self.vec, rows="last")]
        self.assertNotEqual(self.m.generate(self.m.prompt(q, 1), self.images, n=4, edits=big), json.loads(out)["answer"])

    def test_pixels_equal_file(self):
        """An image given as pixels gives what its file gives (a binary PPM written here)."""
        px = (np.arange(56 * 56 * 3, dtype=np.uint32).reshape(56, 56, 3) * 37 % 251).astype(np.uint8)
        path = os.path.join(self.tmp.name, "px.ppm")
        with open(path, "wb") as f:
            f.write(b"P6\n56 56\n255\n" + px.tobytes())
        a = self.m.run_with_hooks(self.prompt, images=[path], logits="last")
        b = self.m.run_with_hooks(self.prompt, images=[px], logits="last")
        self.assertTrue((a == b).all())
        with self.assertRaisesRegex(ValueError, "height, width, 3"):
            self.m.run_with_hooks(self.prompt, images=[px[:, :, 0]])


class Text(unittest.TestCase):
    def test_tokenizer(self):
        m = idscope.load(os.path.join(LLAVA, "text.gguf"), os.path.join(LLAVA, "mmproj.gguf"))
        self.assertEqual(list(m.tokenize("Hello world")), [1, 15043, 3186])
        self.assertEqual(list(m.tokenize("Hello world", bos=False)), [15043, 3186])
        self.assertEqual(m.to_str_tokens("Hello world"), ["<s>", " Hello", " world"])
        self.assertEqual(m.word_token("circle"), 8607)
        self.assertEqual(m.decode([15043, 3186]), "Hello world")
        self.assertEqual(m.prompt("Where?", 1), "USER: <image>\nWhere? ASSISTANT:")
        q = idscope.load(os.path.join(QWEN, "text.gguf"), os.path.join(QWEN, "mmproj.gguf"))
        self.assertEqual(list(q.tokenize("<|im_start|>user")), [151644, 872])
        self.assertEqual(len(q.tokenize("<|im_start|>user", special=False)), 7)


class Errors(unittest.TestCase):
    def test_bad_paths_name_the_file(self):
        mm = os.path.join(LLAVA, "mmproj.gguf")
        with self.assertRaises(idscope.Error) as e:
            idscope.load("/nonexistent/dir/text.gguf", mm)
        self.assertIn("/nonexistent/dir/text.gguf", str(e.exception))
        self.assertEqual(e.exception.status, "io")
        with self.assertRaisesRegex(idscope.Error, "/nonexistent/mm.gguf"):
            idscope.load(os.path.join(LLAVA, "text.gguf"), "/nonexistent/mm.gguf")
        with self.assertRaisesRegex(idscope.Error, "expected 'clip'"):
            idscope.load(os.path.join(LLAVA, "text.gguf"), os.path.join(LLAVA, "text.gguf"))
        m = idscope.load(os.path.join(LLAVA, "text.gguf"), mm)
        with self.assertRaisesRegex(idscope.Error, "/nonexistent/pic.png"):
            m.run_with_cache("USER: <image> hi", images=["/nonexistent/pic.png"])
        with self.assertRaisesRegex(idscope.Error, "1 <image> marker but 0 images"):
            m.run_with_cache("USER: <image> hi")
        with self.assertRaisesRegex(ValueError, "both"):
            idscope.load(os.path.join(LLAVA, "text.gguf"))
        m.close()
        with self.assertRaisesRegex(ValueError, "closed"):
            m.tokenize("x")

    def test_library_override(self):
        env = dict(os.environ, IDSCOPE_LIB="/nonexistent/libidscope.so.0", PYTHONPATH=os.path.join(ROOT, "python"))
        r = subprocess.run([sys.executable, "-c", "import idscope; idscope.load()"], capture_output=True, text=True, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent/libidscope.so.0", r.stderr)
        env["IDSCOPE_LIB"] = os.path.join(ROOT, "build", "release", "libidscope.so.0")
        r = subprocess.run([sys.executable, "-c", "import idscope; print(idscope.load().n_layer, idscope.library_path())"],
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.stdout.split()[0], "6", r.stderr)


class Bundled(unittest.TestCase):
    def test_load_without_arguments(self):
        m = idscope.load()
        self.assertEqual(m.text_path, os.path.join(ROOT, "models", "tiny-llava", "text.gguf"))
        self.assertEqual(m.n_layer, 6)
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "tiny-llava"))
            for f in ("text.gguf", "mmproj.gguf"):
                os.symlink(os.path.join(LLAVA, f), os.path.join(d, "tiny-llava", f))
            os.environ["IDSCOPE_MODELS"] = d
            try:
                self.assertEqual(idscope.load().n_layer, 4)
            finally:
                del os.environ["IDSCOPE_MODELS"]


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2.0 ** 20


class Memory(unittest.TestCase):
    def test_no_leak_over_1000_loads(self):
        """1,000 loads of the bundled model (and a run every 50), each freed when its object goes: the
        resident memory stays flat."""
        prompt = "USER: <image>\nIs the red circle to the left or right of the blue square? ASSISTANT:"
        image = os.path.join(LLAVA, "image.png")
        for _ in range(30):
            m = idscope.load()
            m.run_with_hooks(prompt, [image], candidates=["left"])
        gc.collect()
        before = rss_mib()
        for i in range(1000):
            m = idscope.load()
            if i % 50 == 0:
                m.run_with_hooks(prompt, [image], edits=[idscope.scale("blocks.1.hook_mlp_out", 0.5)], candidates=["left"])
            del m
        gc.collect()
        grown = rss_mib() - before
        measure("RSS growth over 1000 loads (MiB)", "%.2f (from %.1f)" % (grown, before))
        self.assertLess(grown, 2.0)


if __name__ == "__main__":
    unittest.main()
