# The harness the shell test suites share (sourced, not run): a scratch folder $TMP removed on exit,
# the counters, and the checks. A suite ends with its closing line "NAME: N passed, N failed".
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
ko() { fail=$((fail + 1)); echo "FAIL $1"; }
# skipped NAME [WHY]: a check this machine cannot run (counted apart: neither passed nor failed)
skipped() { skip=$((skip + 1)); echo "skip $1${2:+ ($2)}"; }

# expect NAME WANT_RC [pattern on stdout+stderr] -- command...: the exit status, then the pattern; on a
# failure the command's last lines of stderr are shown
expect() {
    name=$1 want=$2 pat=$3
    shift 4
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        ko "$name (exit $rc, want $want)"
        sed 's/^/    /' "$TMP/err" | tail -5
        return
    fi
    if [ -n "$pat" ] && ! grep -q -- "$pat" "$TMP/out" "$TMP/err"; then
        ko "$name (output lacks '$pat')"
        sed 's/^/    /' "$TMP/err" | tail -5
        return
    fi
    ok "$name"
}
