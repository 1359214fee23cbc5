#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into fuzz/seeds/<target>/ from the repository's
own fixtures:

- pickatime_files: one byte naming the file (0 Student, 1 Teacher, 2 Class,
  3 Enrollment, 4 Parent, 5 ParentStudent), then a real file of that name from
  fixtures/bad/pickatime/*/ and the first 60 lines of fixtures/pickatime/;
- text_decode: every one of those files as it is (UTF-8, UTF-16, Latin-1, CR…);
- clever_pages (with --clever, needs a built `clever-mock`): the demo district as served
  by the mock, v3.0 and v2.1, whole and as first pages of 3 (see fuzz/src/clever.rs).

    python3 fuzz/make_seeds.py [--clever target/debug/clever-mock]
"""

import glob
import hashlib
import os
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
FILES = ["Student", "Teacher", "Class", "Enrollment", "Parent", "ParentStudent"]


def put(target, content):
    folder = os.path.join(SEEDS, target)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(content).hexdigest()[:16]
    with open(os.path.join(folder, name), "wb") as f:
        f.write(content)


def csv_seeds():
    for index, stem in enumerate(FILES):
        paths = sorted(glob.glob(os.path.join(ROOT, "fixtures", "bad", "pickatime", "*", stem + ".txt")))
        paths += glob.glob(os.path.join(ROOT, "fixtures", "pickatime", stem + ".txt"))
        for path in paths:
            with open(path, "rb") as f:
                content = f.read()
            if "/fixtures/pickatime/" in path:
                content = b"".join(content.splitlines(keepends=True)[:60])
            put("pickatime_files", bytes([index]) + content)
            put("text_decode", content)


def clever_seeds(binary):
    port = 17000 + os.getpid() % 1000
    server = subprocess.Popen([binary, "--port", str(port), "--token", "demo"], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)

        def get(path):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", headers={"Authorization": "Bearer demo"}
            )
            return urllib.request.urlopen(request).read()

        v3 = ["districts", "schools", "terms", "courses", "sections", "users"]
        v2 = v3[:5] + ["students", "teachers", "school_admins", "district_admins", "contacts"]
        for version, resources, flag in [("v3.0", v3, 0), ("v2.1", v2, 1)]:
            for limit in (10000, 3, 1):
                bodies = [get(f"/{version}/{r}?limit={limit}") for r in resources]
                for school_filter in (0, 2):
                    put("clever_pages", bytes([flag | school_filter]) + b"\x1e".join(bodies))
    finally:
        server.terminate()


if __name__ == "__main__":
    csv_seeds()
    if len(sys.argv) == 3 and sys.argv[1] == "--clever":
        clever_seeds(sys.argv[2])
    for target in sorted(os.listdir(SEEDS)):
        print(target, len(os.listdir(os.path.join(SEEDS, target))), "seeds")
