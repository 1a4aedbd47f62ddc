#!/bin/bash
# cmake --install puts a tailsim that works from any folder under a prefix: the binary in bin/, its data
# (configs/, models/), the scenarios and the plotting tool in share/tailsim/, found relative to the binary;
# TAILSIM_DATA moves them. Where the build made the Python module, it is installed in
# lib/python3.X/dist-packages/tailsim and finds the same data.
# Usage: install_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
bin=$tmp/prefix/bin/tailsim
share=$tmp/prefix/share/tailsim
for f in configs/gpus/h100-sxm.json configs/clusters/h100-nvlink-ib400.json configs/noise/healthy-jitter.json \
         models/h100-sxm/mixtral-8x7b_expert_ffn.csv scenarios/moe/mixtral_8xh100.json tools/plot.py \
         tools/plot_data.py; do
  [ -f "$share/$f" ] || fail "$share/$f was not installed"
done
[ -x "$share/tools/plot.py" ] || fail "tools/plot.py is not executable"
[ -x "$bin" ] || fail "$bin was not installed"

# From another folder, a shipped scenario that names a cluster, a model (configs/) and a measured cost
# table (models/) by name.
mkdir "$tmp/elsewhere" && cd "$tmp/elsewhere"
scenario=$share/scenarios/moe/mixtral_8xh100.json
"$bin" run "$scenario" --set steps=20 --sweep workload.tokens_per_gpu=64 --quiet >out.txt 2>err.txt ||
  fail "the installed binary could not run $scenario: $(cat err.txt)"
grep -q "mixtral-8x7b-8xh100: 20 steps per point" out.txt || fail "no results table: $(cat out.txt)"
# It reads the installed configs, not the source tree's: an unknown name lists the folder it looked in.
if "$bin" run "$scenario" --set cluster.gpu=no-such-gpu --quiet >out.txt 2>err.txt; then fail "an unknown GPU ran"; fi
grep -qF "(from $share/configs/gpus)" err.txt || fail "not looked up in $share/configs: $(cat err.txt)"
"$bin" list noise | grep -q "healthy-jitter" || fail "tailsim list noise does not list configs/noise"

# TAILSIM_DATA: a copy of the data with one more GPU, moved out of the prefix.
cp -r "$share" "$tmp/data"
sed 's/"description": "[^"]*"/"description": "a test GPU"/' "$share/configs/gpus/h100-sxm.json" >"$tmp/data/configs/gpus/test-gpu.json"
TAILSIM_DATA=$tmp/data "$bin" list gpus | grep -q "test-gpu" || fail "TAILSIM_DATA's configs are not listed"
TAILSIM_DATA=$tmp/data "$bin" run "$scenario" --set steps=20 --sweep workload.tokens_per_gpu=64 --set cluster.gpu=test-gpu \
  --quiet >out.txt 2>err.txt || fail "a GPU from TAILSIM_DATA did not run: $(cat err.txt)"
if TAILSIM_DATA=$tmp/empty "$bin" run "$scenario" --set steps=20 --quiet >out.txt 2>err.txt; then
  fail "TAILSIM_DATA pointing at an empty folder still found the data"
fi
grep -qF "$tmp/empty/configs" err.txt || fail "the error does not name TAILSIM_DATA's folder: $(cat err.txt)"

# The Python module, where the build made it: installed beside the data, it finds share/tailsim from any folder.
python=ok
if ls "$build"/python/tailsim/_tailsim*.so >/dev/null 2>&1; then
  pkg=$(ls -d "$tmp"/prefix/lib/python3*/dist-packages/tailsim 2>/dev/null) || fail "the Python module was built but not installed"
  ls "$pkg"/_tailsim*.so "$pkg"/__init__.py >/dev/null || fail "the Python package in $pkg is incomplete"
  PYTHONPATH=$(dirname "$pkg") /usr/bin/python3 - "$scenario" "$share" "$pkg" >out.txt 2>&1 <<'PY' || fail "the installed Python module: $(cat out.txt)"
import sys
import tailsim
scenario, share, pkg = sys.argv[1:]
assert tailsim.__file__.startswith(pkg), tailsim.__file__
results = tailsim.run(scenario, set={"steps": 20}, sweep={"workload.tokens_per_gpu": [64]}, threads=1)
assert results.scenario == "mixtral-8x7b-8xh100" and len(results) >= 1, results.document
try:
    tailsim.run(scenario, set={"steps": 20, "cluster.gpu": "no-such-gpu"})
    sys.exit("an unknown GPU ran")
except tailsim.InputError as e:
    assert f"(from {share}/configs/gpus)" in e.message, e.message
PY
else
  python="not built, not checked"
fi
echo "ok: installed into $tmp/prefix, ran from another folder, and with TAILSIM_DATA; Python module: $python"
