# shellcheck shell=bash disable=SC2034 # settings used by smoke.sh, which sources this
# Sourced by packaging/smoke.sh: settings, the private environment, reporting and the executables.

# --- settings (read before the environment is cleaned) ---------------------------------------

STEP_TIMEOUT=${CONCORD_SMOKE_TIMEOUT_S:-60}
EXPECT_VERSION=${CONCORD_EXPECT_VERSION:-}
BUDGET_VERSION_S=${CONCORD_BUDGET_VERSION_S:-0.3}
BUDGET_SELFTEST_S=${CONCORD_BUDGET_SELFTEST_S:-1.5}
RUNS=5
HEALTH_WAIT_S=15
STOP_WAIT_S=10
SHOW_LINES=40 # lines of captured output shown per file on a failure

# Seconds (0.3, 1.5, 2) -> whole milliseconds in _MS, without floating point.
to_ms() {
    local s=$1 int frac
    [[ $s =~ ^([0-9]*)(\.([0-9]*))?$ && -n ${BASH_REMATCH[1]}${BASH_REMATCH[3]} ]] || return 1
    int=${BASH_REMATCH[1]:-0} frac=${BASH_REMATCH[3]:-}000
    _MS=$((10#$int * 1000 + 10#${frac:0:3}))
}
for _var in STEP_TIMEOUT BUDGET_VERSION_S BUDGET_SELFTEST_S; do
    if ! to_ms "${!_var}"; then
        echo "FAIL: $_var must be a number of seconds, not '${!_var}'" >&2
        exit 2
    fi
done
to_ms "$BUDGET_VERSION_S" && BUDGET_VERSION_MS=$_MS
to_ms "$BUDGET_SELFTEST_S" && BUDGET_SELFTEST_MS=$_MS

PREFIX=$(cd -- "$1" 2>/dev/null && pwd -P) || PREFIX=$1  # absolute: the steps run elsewhere
APP=$PREFIX/concord
SERVER=$PREFIX/concord-server

# --- a clean environment -----------------------------------------------------------------------

unset DISPLAY WAYLAND_DISPLAY WAYLAND_SOCKET DBUS_SESSION_BUS_ADDRESS XAUTHORITY \
    XDG_SESSION_TYPE XDG_CURRENT_DESKTOP XDG_SESSION_DESKTOP DESKTOP_SESSION SESSION_MANAGER \
    GNOME_KEYRING_CONTROL SSH_AUTH_SOCK \
    LD_LIBRARY_PATH LD_PRELOAD PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONSAFEPATH \
    PYTHON_KEYRING_BACKEND KEYRING_PROPERTY_KEYRING_PATH
while IFS= read -r _var; do unset "$_var"; done < <(compgen -e | grep -E '^(QT_|CONCORD_)')
export LANG=${LANG:-C.UTF-8}

START_DIR=$(pwd)
# Unix sockets are made under XDG_RUNTIME_DIR and TMPDIR (the self-test's are
# $TMPDIR/cb-XXXXXXXX/<20 hex>/hub.sock and $TMPDIR/concord-st-XXXXXXXX/run2/...), and the app
# refuses a socket path of 100 bytes or more: keep
# these paths short (/tmp/concord-smoke.XXXXXX/NN/tmp), whatever the caller's TMPDIR.
_tmp_root=${TMPDIR:-/tmp}
((${#_tmp_root} > 16)) && _tmp_root=/tmp
WORK=$(mktemp -d "$_tmp_root/concord-smoke.XXXXXX") || {
    echo "FAIL: mktemp -d in $_tmp_root failed" >&2
    exit 1
}
# The process groups of `timeout` running a step's command / concord-server, while they run.
CHILD_PGID='' SERVER_PGID=''
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local g
    for g in $CHILD_PGID $SERVER_PGID; do kill -TERM -- "-$g" 2>/dev/null; done
    if [[ -n $CHILD_PGID$SERVER_PGID ]]; then
        sleep 0.5
        for g in $CHILD_PGID $SERVER_PGID; do kill -KILL -- "-$g" 2>/dev/null; done
    fi
    cd / && rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$WORK" || exit 1

ENV_N=0
ENV_DIR=
# A fresh private HOME, XDG_* dirs and TMPDIR for a step; ENV_DIR is the step's scratch dir
# (named by number, for short socket paths; its `step` file holds the name).
fresh_env() {
    ENV_N=$((ENV_N + 1))
    ENV_DIR=$WORK/$(printf '%02d' "$ENV_N")
    mkdir -p -- "$ENV_DIR"/{home,config,data,cache,state,tmp,out} &&
        mkdir -m 0700 -- "$ENV_DIR/run" && echo "$1" >"$ENV_DIR/step" || return 1
    export HOME=$ENV_DIR/home XDG_RUNTIME_DIR=$ENV_DIR/run XDG_CONFIG_HOME=$ENV_DIR/config \
        XDG_DATA_HOME=$ENV_DIR/data XDG_CACHE_HOME=$ENV_DIR/cache XDG_STATE_HOME=$ENV_DIR/state \
        TMPDIR=$ENV_DIR/tmp
    cd -- "$ENV_DIR" || return 1
}

# --- reporting -----------------------------------------------------------------------------------

now_us() { _US=${EPOCHREALTIME//[!0-9]/}; }
declare -a R_NAME=() R_STATUS=() R_MS=()
STEP='' STEP_T0=0
declare -a STEP_ERRS=() STEP_NOTES=() STEP_LOGS=()

begin_step() {
    STEP=$1 STEP_ERRS=() STEP_NOTES=() STEP_LOGS=()
    now_us
    STEP_T0=$_US
}
problem() { STEP_ERRS+=("$1"); }
note() { STEP_NOTES+=("$1"); }
attach() { STEP_LOGS+=("$1" "$2"); } # label file: shown if the step fails

show_file() {
    local label=$1 file=$2 n line
    [[ -s $file ]] || return 0
    n=$(wc -l <"$file")
    if ((n > SHOW_LINES)); then
        printf '     --- %s (last %d of %d lines)\n' "$label" "$SHOW_LINES" "$n"
    else
        printf '     --- %s\n' "$label"
    fi
    while IFS= read -r line || [[ -n $line ]]; do
        printf '     | %s\n' "$line"
    done < <(tail -n "$SHOW_LINES" -- "$file")
}

# end_step [skip REASON]
# shellcheck disable=SC2120 # smoke.sh passes "skip REASON"
end_step() {
    local ms status n i
    now_us
    ms=$(((_US - STEP_T0) / 1000))
    if ((${#STEP_ERRS[@]})); then
        status=FAIL
        printf 'FAIL %s: %s (%d ms)\n' "$STEP" "${STEP_ERRS[0]}" "$ms"
        for ((i = 1; i < ${#STEP_ERRS[@]}; i++)); do printf '     also: %s\n' "${STEP_ERRS[i]}"; done
    elif (($# == 2)) && [[ $1 == skip ]]; then
        status=skip
        printf 'skip %s: %s (%d ms)\n' "$STEP" "$2" "$ms"
    else
        status=ok
        printf 'ok   %s (%d ms)\n' "$STEP" "$ms"
    fi
    for n in "${STEP_NOTES[@]}"; do printf '     %s\n' "$n"; done
    if [[ $status == FAIL ]]; then
        for ((i = 0; i < ${#STEP_LOGS[@]}; i += 2)); do show_file "${STEP_LOGS[i]}" "${STEP_LOGS[i + 1]}"; done
    fi
    R_NAME+=("$STEP") R_STATUS+=("$status") R_MS+=("$ms")
}

# run OUT ERR CMD...: CMD bounded by the step timeout, stdin from /dev/null; RC and MS are set.
run() {
    local out=$1 err=$2 t0
    shift 2
    now_us
    t0=$_US
    # In the background, so that a Ctrl+C or SIGTERM interrupts `wait` and the EXIT trap stops
    # the command's process group (timeout leads one). 2>/dev/null: no "Aborted" notes of bash.
    timeout -k 5 "$STEP_TIMEOUT" "$@" >"$out" 2>"$err" </dev/null &
    CHILD_PGID=$!
    wait "$CHILD_PGID" 2>/dev/null
    RC=$?
    CHILD_PGID=
    now_us
    MS=$(((_US - t0) / 1000))
}
rc_text() { # an exit status in words
    case $1 in
    0) echo "exit 0" ;;
    124) echo "timed out after ${STEP_TIMEOUT} s (timeout's status 124)" ;;
    126 | 127) echo "status $1: could not be executed" ;;
    *) if (($1 > 128)); then echo "killed by signal $(($1 - 128)) ($(kill -l "$(($1 - 128))" 2>/dev/null))"; else echo "exit $1"; fi ;;
    esac
}
have() { command -v "$1" >/dev/null 2>&1; }

# require_tools TOOL:PACKAGE...: end the current step as failed (status 1) if a tool is missing.
require_tools() {
    local tool missing=()
    for tool in "$@"; do
        have "${tool%%:*}" || missing+=("${tool%%:*} (package ${tool#*:})")
    done
    ((${#missing[@]} == 0)) && return 0
    problem "not installed: ${missing[*]}"
    end_step
    return 1
}

# Checks a self-test's output (OUT ERR RC): sets problems on the current step.
# check_platform OUT NAME: the self-test's window painted on the Qt platform NAME.
check_platform() {
    grep -qE "^[[:space:]]*\[PASS\] window renders:.* on $2(,|\$)" "$1" ||
        problem "the window did not paint on the $2 platform"
}

check_selftest() {
    local out=$1 err=$2 rc=$3 fails
    ((rc == 0)) || problem "concord --self-test: $(rc_text "$rc")"
    grep -qx 'all checks passed' "$out" || problem "the output has no line 'all checks passed'"
    fails=$(grep -E '^[[:space:]]*\[FAIL\]' "$out")
    [[ -z $fails ]] || problem "failed checks: $(echo "$fails" | sed 's/^[[:space:]]*//' | paste -sd ';' -)"
    ! grep -q 'Traceback (most recent call last)' "$out" "$err" || problem "a Python traceback was printed"
    # In this clean environment the local bus must reach across processes.
    ! grep -qE '^[[:space:]]*\[PASS\] local bus:.*in-process only' "$out" ||
        problem "the local bus is in-process only (it could not use its runtime directory)"
    attach "stdout" "$out"
    attach "stderr" "$err"
}

# --- the executables -----------------------------------------------------------------------------

kind() { # what the path $1 resolves to: "ELF", "script" or "missing"
    local real magic
    real=$(readlink -f -- "$1" 2>/dev/null) || { echo missing; return; }
    [[ -f $real && -x $real ]] || { echo missing; return; }
    LC_ALL=C IFS= read -r -n 4 -d '' magic <"$real"
    [[ $magic == $'\x7fELF' ]] && echo ELF || echo script
}

echo "Concord smoke test"
printf '  %-15s %s\n' prefix: "$PREFIX"
for exe in "$APP" "$SERVER"; do
    printf '  %-15s %s -> %s (%s)\n' "${exe##*/}:" "$exe" "$(readlink -f -- "$exe" 2>/dev/null)" "$(kind "$exe")"
done
# shellcheck disable=SC1091
_os=$( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null)
printf '  %-15s %s, %s %s, %s cores, bash %s\n' host: "${_os:-unknown OS}" "$(uname -s)" "$(uname -r)" \
    "$(nproc 2>/dev/null || echo '?')" "${BASH_VERSION%%(*}"
printf '  %-15s %s (removed at exit)\n' scratch: "$WORK"
for exe in "$APP" "$SERVER"; do
    if [[ $(kind "$exe") == missing ]]; then
        echo "FAIL: $exe is missing or not executable"
        exit 1
    fi
done
if ! have timeout; then
    echo "FAIL: timeout (coreutils) is not installed"
    exit 1
fi
