#!/usr/bin/env bash
# Proves tools/check_layers can fail: fake sim/ trees in a temporary folder, one clean (exit 0 and the
# summary line) and, for each rule, one with a single deliberate violation (exit 1, naming file, line and
# include). Usage: tests/tools/check_layers_test.sh [path to check_layers]
set -uo pipefail
checker=${1:-"$(dirname "$0")/../../tools/check_layers"}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_layers_test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# A tree every rule accepts: each part includes itself and the parts allowed below it. Made once, then
# copied (a fork is slow on a busy machine).
make_template() {
  local root=$1 part
  mkdir -p "$root/sim/"{core,config,engine,stats,cost,cluster,policy,workload,scenario,run,mpi,report,cli}
  for part in core config engine stats cost cluster policy workload scenario run mpi report cli; do
    printf '#pragma once\n#include <vector>\n' >"$root/sim/$part/$part.hpp"
  done
  printf '#include "sim/core/core.hpp"\n' >>"$root/sim/config/config.hpp"
  printf '#include "sim/core/core.hpp"\n#include "sim/engine/engine.hpp"\n' >"$root/sim/engine/engine.cpp"
  printf '#include "sim/config/json_reader.hpp"\n#include <nlohmann/json.hpp>\n' >>"$root/sim/stats/stats.hpp"
  printf '#include "sim/stats/stats.hpp"\n#include "sim/config/config.hpp"\n' >>"$root/sim/cost/cost.hpp"
  printf '#include "sim/cost/cost.hpp"\n' >>"$root/sim/cluster/cluster.hpp"
  printf '#include "sim/cluster/cluster.hpp"\n#include "sim/stats/stats.hpp"\n' >>"$root/sim/policy/policy.hpp"
  printf '#include "sim/policy/policy.hpp"\n#include "sim/engine/engine.hpp"\n' >>"$root/sim/workload/workload.hpp"
  printf '#include "sim/workload/workload.hpp"\n' >>"$root/sim/scenario/scenario.hpp"
  printf '#include "sim/scenario/scenario.hpp"\n' >>"$root/sim/run/run.hpp"
  printf '#include "sim/run/run.hpp"\n#include "sim/mpi/mpi.hpp"\n' >"$root/sim/mpi/mpi.cpp"
  printf '#include "sim/run/run.hpp"\n' >>"$root/sim/report/report.hpp"
  printf '#include "sim/report/report.hpp"\n#include "sim/mpi/mpi.hpp"\n' >"$root/sim/cli/main.cpp"
}
make_template "$tmp/template"
clean_tree() { cp -R "$tmp/template" "$1"; }

# expect_violation NAME FILE LINE_TEXT MESSAGE: appends LINE_TEXT to FILE (relative to the fake root) of a
# clean tree and expects exit 1 with "FILE:LINE: LINE_TEXT" and MESSAGE in the output.
expect_violation() {
  local name=$1 file=$2 text=$3 message=$4 root="$tmp/$1"
  clean_tree "$root"
  printf '%s\n' "$text" >>"$root/$file"
  local line=0 out rc
  while IFS= read -r _; do line=$((line + 1)); done <"$root/$file"
  out=$("$checker" --root "$root" 2>&1)
  rc=$?
  [ "$rc" = 1 ] || fail "$name: expected exit 1, got $rc: $out"
  case "$out" in *"$file:$line: $text"*) ;; *) fail "$name: the output names no '$file:$line: $text': $out" ;; esac
  case "$out" in *"$message"*) ;; *) fail "$name: the output lacks '$message': $out" ;; esac
}

clean_tree "$tmp/clean"
out=$("$checker" --root "$tmp/clean" 2>&1)
rc=$?
[ "$rc" = 0 ] || fail "clean tree: expected exit 0, got $rc: $out"
case "$out" in "check_layers: 16 files, 18 includes of sim/, layering holds ("*) ;; *) fail "clean tree: unexpected summary: $out" ;; esac

expect_violation upward sim/stats/stats.hpp '#include "sim/workload/workload.hpp"' "workload is above stats"
expect_violation core_up sim/core/core.hpp '#include "sim/config/config.hpp"' "core includes no other part"
expect_violation config_up sim/config/config.hpp '#include "sim/engine/engine.hpp"' "config may include core only"
expect_violation engine_json_reader sim/engine/engine.hpp '#include "sim/config/json_reader.hpp"' "engine may include no JSON"
expect_violation engine_registry sim/engine/engine.cpp '#include "sim/config/registry.hpp"' "engine may include no JSON"
expect_violation engine_nlohmann sim/engine/engine.hpp '#include <nlohmann/json.hpp>' "engine may include no JSON"
expect_violation policy_engine sim/policy/policy.hpp '#include "sim/engine/engine.hpp"' "policy may include neither engine nor workload"
expect_violation policy_workload sim/policy/policy.hpp '#include "sim/workload/workload.hpp"' "policy may include neither engine nor workload"
expect_violation cost_cluster sim/cost/cost.hpp '#include "sim/cluster/cluster.hpp"' "cost may not include cluster"
expect_violation run_mpi sim/run/run.hpp '#include "sim/mpi/mpi.hpp"' "only cli includes mpi"
expect_violation report_mpi sim/report/report.hpp '#include "sim/mpi/mpi.hpp"' "only cli includes mpi"
expect_violation mpi_report sim/mpi/mpi.hpp '#include "sim/report/report.hpp"' "mpi sits beside run"
expect_violation unknown_part sim/run/run.hpp '#include "sim/util/strings.hpp"' "'util' is not a part"
expect_violation no_part sim/run/run.hpp '#include "sim/strings.hpp"' "is not a part"

# Allowed includes beside the clean tree's: cli includes mpi; mpi includes run; a part includes itself.
root="$tmp/allowed"
clean_tree "$root"
printf '#include "sim/mpi/mpi.hpp"\n#include "sim/cli/cli.hpp"\n' >>"$root/sim/cli/cli.hpp"
printf '#include "sim/run/run.hpp"\n#include "sim/core/core.hpp"\n' >>"$root/sim/mpi/mpi.hpp"
out=$("$checker" --root "$root" 2>&1)
rc=$?
[ "$rc" = 0 ] || fail "allowed includes: expected exit 0, got $rc: $out"

# A file outside every part.
clean_tree "$tmp/outside"
printf '#pragma once\n' >"$tmp/outside/sim/loose.hpp"
out=$("$checker" --root "$tmp/outside" 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "file outside every part: expected exit 1, got $rc: $out"
case "$out" in *"sim/loose.hpp: the file lies outside every part"*) ;; *) fail "file outside every part: $out" ;; esac

# No sim/ folder: a usage error, not a pass.
mkdir -p "$tmp/empty"
"$checker" --root "$tmp/empty" >/dev/null 2>&1
rc=$?
[ "$rc" = 2 ] || fail "no sim/: expected exit 2, got $rc"

if [ "$failures" -gt 0 ]; then
  echo "check_layers_test: $failures failure(s)" >&2
  exit 1
fi
echo "check_layers_test: ok"
