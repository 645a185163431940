"""Fetch the pinned onnxruntime-web from the npm registry and write the three files the page needs into
src/ferkit/serve/static/ort/ (committed; shipped inside the wheel; the page never fetches them from elsewhere).

    python scripts/vendor_onnxruntime_web.py            # fetch, verify, write (needs npm: `npm pack`)
    python scripts/vendor_onnxruntime_web.py --check    # the committed files against MANIFEST.json (no network)

The tarball's sha512 must equal the pinned integrity (the registry's `dist.integrity`), its package.json must say
MIT, and each file written is recorded (bytes, sha256) in ort/MANIFEST.json, which tests/test_site.py checks.
To move to another version: change VERSION and INTEGRITY (`npm view onnxruntime-web@X dist.integrity`), run this,
run the browser tests (tests/test_device_page.py, tests/test_site.py), commit the folder.

The npm package carries no LICENSE file (its package.json says MIT and points to the repository's); ort/LICENSE is
the repository's MIT licence text (github.com/microsoft/onnxruntime, LICENSE), kept beside the files.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "onnxruntime-web"
VERSION = "1.31.1"
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
# the WebAssembly-only ES module build, its Emscripten glue and the SIMD (+threads) WebAssembly binary: all the
# wasm backend needs (no WebGPU/WebGL builds)
FILES = ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]
OUT = Path(__file__).resolve().parents[1] / "src" / "ferkit" / "serve" / "static" / "ort"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(out: Path = OUT) -> list[str]:
    """Problems with the committed files (empty: all there, as recorded)."""
    man = out / "MANIFEST.json"
    if not man.is_file():
        return [f"{man} is missing: run python scripts/vendor_onnxruntime_web.py"]
    m = json.loads(man.read_text())
    problems = [] if (out / "LICENSE").is_file() else [f"{out / 'LICENSE'} is missing"]
    for name, rec in m["files"].items():
        p = out / name
        if not p.is_file():
            problems.append(f"{p} is missing")
        elif sha256(p) != rec["sha256"]:
            problems.append(f"{p}: sha256 differs from MANIFEST.json")
    return problems


def fetch(out: Path = OUT) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--json", "--pack-destination", tmp],
                           capture_output=True, text=True, cwd=tmp)
        if r.returncode:
            raise SystemExit(f"npm pack {PACKAGE}@{VERSION} failed:\n{r.stderr}")
        tgz = Path(tmp) / json.loads(r.stdout)[0]["filename"]
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
        if digest != INTEGRITY:
            raise SystemExit(f"{tgz.name}: integrity {digest} is not the pinned {INTEGRITY}")
        with tarfile.open(tgz) as tar:
            pkg = json.load(tar.extractfile("package/package.json"))
            if pkg.get("license") != "MIT" or pkg.get("version") != VERSION:
                raise SystemExit(f"{tgz.name}: license {pkg.get('license')!r}, version {pkg.get('version')!r}")
            out.mkdir(parents=True, exist_ok=True)
            files = {}
            for name in FILES:
                data = tar.extractfile(f"package/dist/{name}").read()
                tmp_out = out / (name + ".part")
                tmp_out.write_bytes(data)
                tmp_out.replace(out / name)
                files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {"package": PACKAGE, "version": VERSION, "license": "MIT (LICENSE beside these files)",
                "tarball": f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz", "integrity": INTEGRITY,
                "written_by": "scripts/vendor_onnxruntime_web.py", "files": files}
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(f["bytes"] for f in files.values())
    print(f"{PACKAGE} {VERSION}: {len(files)} files, {total / 1e6:.1f} MB written to {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check the committed files against MANIFEST.json")
    args = ap.parse_args()
    if args.check:
        problems = check()
        print("\n".join(problems) or f"{OUT}: all files as recorded")
        return 1 if problems else 0
    fetch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
