#!/usr/bin/env bash
# fuzz-all.sh runs every Fuzz target of the module, one at a time, each for
# the same time, and collects the inputs that crash one.
#
#   test/fuzz-all.sh [-t FUZZTIME] [-o OUTDIR] [-p PARALLEL] [-r REGEXP]
#
#   -t  time per target, as go test's -fuzztime takes it (10m, 30s, 5000x);
#       default 10m
#   -o  where the logs and crashers go; default fuzz-results/<UTC time>
#   -p  fuzzing workers per target (go test -parallel); default: go's
#       (GOMAXPROCS)
#   -r  run only the targets whose name matches this regexp
#
# For each target it writes OUTDIR/<pkg>.<Target>.log and prints one line:
#   ok    <pkg> <Target> <time> <last progress line>
#   FAIL  <pkg> <Target> <time> crasher: <file>
# A crasher is the file go test writes under the package's
# testdata/fuzz/<Target>/; it is copied to OUTDIR/crashers/<pkg>/<Target>/
# too. Commit it where go wrote it once the bug is fixed: it then stays in
# the seed corpus and the plain `go test` replays it. The script ends with
# "N passed, N failed" and exits non-zero when a target failed.
set -uo pipefail

fuzztime=10m
out=""
parallel=""
only=""
while getopts "t:o:p:r:h" opt; do
  case "$opt" in
    t) fuzztime=$OPTARG ;;
    o) out=$OPTARG ;;
    p) parallel=$OPTARG ;;
    r) only=$OPTARG ;;
    *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.." || exit 2
module=$(go list -m) || exit 2
[ -n "$out" ] || out="fuzz-results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out" || exit 2

# The packages whose test files declare a Fuzz function; go test -list then
# names their targets (listing only these spares running the TestMain of the
# end-to-end packages, which builds the daemons).
pkgs=()
while read -r dir path files; do
  for f in $files; do
    if grep -q '^func Fuzz' "$dir/$f"; then pkgs+=("$path"); break; fi
  done
done < <(go list -f '{{.Dir}} {{.ImportPath}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./...)
if [ "${#pkgs[@]}" -eq 0 ]; then
  echo "fuzz-all: no package declares a Fuzz function" >&2
  exit 2
fi

# go test -list prints a package's matching names, then "ok  <pkg> <time>".
targets=()
names=()
if ! go test -run '^$' -list '^Fuzz' "${pkgs[@]}" >"$out/list.txt" 2>&1; then
  echo "fuzz-all: listing the Fuzz targets failed; see $out/list.txt" >&2
  exit 2
fi
while read -r first second _; do
  case "$first" in
    Fuzz*) names+=("$first") ;;
    ok)
      for n in "${names[@]}"; do
        if [ -z "$only" ] || [[ "$n" =~ $only ]]; then targets+=("$second $n"); fi
      done
      names=() ;;
    *) names=() ;;
  esac
done <"$out/list.txt"

if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz-all: no Fuzz target found" >&2
  exit 2
fi
echo "fuzz-all: ${#targets[@]} targets, $fuzztime each, results in $out"

passed=0
failed=0
for t in "${targets[@]}"; do
  pkg=${t% *}
  name=${t#* }
  rel=${pkg#"$module"}
  rel=.${rel}
  short=${rel#./}
  [ -n "$short" ] || short=root
  log="$out/${short//\//_}.$name.log"
  corpus="$rel/testdata/fuzz/$name"
  before=$(ls "$corpus" 2>/dev/null | sort)
  args=(test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime")
  [ -z "$parallel" ] || args+=(-parallel "$parallel")
  start=$(date +%s)
  go "${args[@]}" "$rel" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))s
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    printf 'ok    %s %s %s %s\n' "$short" "$name" "$took" "$(grep -E '^fuzz: elapsed' "$log" | tail -1)"
    continue
  fi
  failed=$((failed + 1))
  new=$(comm -13 <(echo "$before") <(ls "$corpus" 2>/dev/null | sort))
  if [ -z "$new" ]; then
    printf 'FAIL  %s %s %s no crasher written (exit %d); see %s\n' "$short" "$name" "$took" "$rc" "$log"
    continue
  fi
  mkdir -p "$out/crashers/$short/$name"
  for f in $new; do
    cp "$corpus/$f" "$out/crashers/$short/$name/"
    printf 'FAIL  %s %s %s crasher: %s\n' "$short" "$name" "$took" "$corpus/$f"
  done
done
echo "fuzz-all: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
