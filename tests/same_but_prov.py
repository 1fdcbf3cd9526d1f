#!/usr/bin/env python3
"""Compare two result folders file by file, byte for byte apart from the provenance record: in a
JSON result the "provenance" object, in a safetensors file the metadata key "idscope" (the JSON
result with its provenance) and the header's length; every tensor's bytes must be equal.
Usage: same_but_prov.py DIR_A DIR_B [FILE...] (default: every *.json, *.csv, *.safetensors of DIR_A).
Prints the first difference and exits 1; exits 0 when the folders agree."""
import json
import os
import struct
import sys


def strip_json(text):
    doc = json.loads(text)
    if isinstance(doc, dict):
        doc.pop("provenance", None)
    return json.dumps(doc, sort_keys=False)


def split_st(data):
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + n])
    meta = head.pop("__metadata__", {})
    if "idscope" in meta:
        meta = dict(meta, idscope=strip_json(meta["idscope"]))
    # the header without the provenance, and the tensor bytes as written
    return json.dumps([head, meta]), data[8 + n:]


def same(a, b):
    with open(a, "rb") as f:
        da = f.read()
    with open(b, "rb") as f:
        db = f.read()
    if a.endswith(".json"):
        # the bytes outside the provenance object: the files are written in one format, so the
        # text before "provenance" must match exactly
        ka, kb = da.split(b'"provenance"')[0], db.split(b'"provenance"')[0]
        return ka == kb and strip_json(da) == strip_json(db)
    if a.endswith(".safetensors"):
        return split_st(da) == split_st(db)
    return da == db


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    da, db = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or sorted(n for n in os.listdir(da) if n.endswith((".json", ".csv", ".safetensors"))
                                   and n != "part.json")
    if not names:
        print("no result files in %s" % da)
        return 1
    for n in names:
        a, b = os.path.join(da, n), os.path.join(db, n)
        if not os.path.exists(b):
            print("%s: missing in %s" % (n, db))
            return 1
        if not same(a, b):
            print("%s: differs between %s and %s" % (n, da, db))
            return 1
    print("same: %s" % " ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
