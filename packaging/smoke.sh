#!/usr/bin/env bash
# Concord smoke test: run it against any build or installed copy of Concord.
#
# Usage:  packaging/smoke.sh PREFIX
#
#   PREFIX  a directory holding the executables `concord` and `concord-server`: the frozen
#           PyInstaller onedir bundle (dist/concord/, with _internal/), an installed copy
#           (/usr/bin, whose entries are symlinks into /usr/lib/concord/), or a development
#           venv's bin/ (console scripts: the ELF check is then skipped, it says so).
#
# Steps (each prints `ok   <step> (<ms> ms)`, `skip <step>: <why>` or
# `FAIL <step>: <reason>` with the captured output; all steps run, the last line is
# `PASS: ...` with exit status 0 or `FAIL: ...` with exit status 1; 2 is a usage error):
#   version               `concord --version` / `concord-server --version` print
#                         `concord <ver>` / `concord-server <ver>`, the same <ver>
#                         (= $CONCORD_EXPECT_VERSION when that is set)
#   self-test             `QT_QPA_PLATFORM=offscreen concord --self-test` exits 0 and prints
#                         `all checks passed`, and writes the same to `--report FILE`
#   self-test-keyring     the same on a private D-Bus session with gnome-keyring's Secret
#                         Service (an unlocked login keyring made in the private HOME): it must
#                         also report `[PASS] keyring: secure backend ...`
#   self-test-xvfb        the same under `xvfb-run -a` with QT_QPA_PLATFORM=xcb (the window
#                         must have painted on xcb)
#   self-test-wayland     the same on weston's headless Wayland compositor with
#                         QT_QPA_PLATFORM=wayland (the window must have painted on wayland)
#   server                `concord-server serve` on a free 127.0.0.1 port answers
#                         GET /api/v1/health with 200 (status ok, same version) within 15 s,
#                         then stops by itself within 10 s of SIGTERM, with exit status 0
#   elf-deps              when PREFIX/concord resolves to an ELF in a directory with _internal/
#                         (a bundle, also behind /usr/bin symlinks): every DT_NEEDED of every
#                         ELF file in the bundle is a file in the bundle (by name) or in the
#                         system's linker cache (`ldconfig -p`, same architecture). Needs only
#                         bash and coreutils (od, dd), not binutils or python3.
#   budget-*              median of 5 warm runs (after one warm-up run):
#                           concord --version         <= 0.3 s  ($CONCORD_BUDGET_VERSION_S)
#                           concord-server --version  <= 0.3 s  ($CONCORD_BUDGET_VERSION_S)
#                           concord --self-test       <= 1.5 s  ($CONCORD_BUDGET_SELFTEST_S)
#                         (offscreen, no keyring)
#
# Every step runs with a fresh private HOME, XDG_RUNTIME_DIR (0700), XDG_CONFIG_HOME,
# XDG_DATA_HOME, XDG_CACHE_HOME, XDG_STATE_HOME and TMPDIR under one `mktemp -d` that is removed
# at exit; the caller's display, D-Bus session, keyring, Qt, Python, loader and CONCORD_*
# variables are unset first. Every command is bounded by `timeout` ($CONCORD_SMOKE_TIMEOUT_S,
# default 60 s).
#
# Needs (Debian 12): bash >= 5, coreutils, findutils, libc-bin (ldconfig); dbus-daemon + dbus-bin
# (dbus-run-session, dbus-send) and gnome-keyring for self-test-keyring; xvfb + xauth for
# self-test-xvfb; weston for self-test-wayland. A missing tool fails its step, saying which
# package to install.

set -u
set -o pipefail

if ((BASH_VERSINFO[0] < 5)); then
    echo "FAIL: bash >= 5 is needed (EPOCHREALTIME); this is $BASH_VERSION" >&2
    exit 2
fi
if (($# != 1)) || [[ $1 == -* ]]; then
    echo "usage: $0 PREFIX   (a directory holding concord and concord-server)" >&2
    exit 2
fi

SMOKE_LIB=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/smoke
# shellcheck source=packaging/smoke/common.sh
source "$SMOKE_LIB/common.sh"


# --- 1. versions ---------------------------------------------------------------------------------

VERSION=
step_version() {
    begin_step version
    fresh_env version || problem "could not make the private directories"
    local o=$ENV_DIR/out app_v='' srv_v='' line
    run "$o/app.out" "$o/app.err" "$APP" --version
    line=$(head -n 1 "$o/app.out")
    if ((RC != 0)); then
        problem "concord --version: $(rc_text "$RC")"
    elif [[ $line =~ ^concord\ ([^[:space:]]+)$ ]]; then
        app_v=${BASH_REMATCH[1]}
    else
        problem "concord --version printed '$line', not 'concord <version>'"
    fi
    attach "concord --version stdout" "$o/app.out"
    attach "concord --version stderr" "$o/app.err"
    run "$o/srv.out" "$o/srv.err" "$SERVER" --version
    line=$(head -n 1 "$o/srv.out")
    if ((RC != 0)); then
        problem "concord-server --version: $(rc_text "$RC")"
    elif [[ $line =~ ^concord-server\ ([^[:space:]]+)$ ]]; then
        srv_v=${BASH_REMATCH[1]}
    else
        problem "concord-server --version printed '$line', not 'concord-server <version>'"
    fi
    attach "concord-server --version stdout" "$o/srv.out"
    attach "concord-server --version stderr" "$o/srv.err"
    if [[ -n $app_v && -n $srv_v && $app_v != "$srv_v" ]]; then
        problem "the versions differ: concord $app_v, concord-server $srv_v"
    fi
    if [[ -n $EXPECT_VERSION ]]; then
        [[ -z $app_v || $app_v == "$EXPECT_VERSION" ]] ||
            problem "concord is version $app_v, CONCORD_EXPECT_VERSION is $EXPECT_VERSION"
        [[ -z $srv_v || $srv_v == "$EXPECT_VERSION" ]] ||
            problem "concord-server is version $srv_v, CONCORD_EXPECT_VERSION is $EXPECT_VERSION"
    fi
    VERSION=$app_v
    note "concord ${app_v:-?}, concord-server ${srv_v:-?}${EXPECT_VERSION:+ (expected $EXPECT_VERSION)}"
    end_step
}

# --- 2. self-test, offscreen ---------------------------------------------------------------------

step_selftest() {
    begin_step self-test
    fresh_env self-test || problem "could not make the private directories"
    local o=$ENV_DIR/out report=$ENV_DIR/out/report.txt
    # --report FILE: how a windowed build (no console) reports; it must hold the printed report.
    run "$o/st.out" "$o/st.err" env QT_QPA_PLATFORM=offscreen "$APP" --self-test --report "$report"
    check_selftest "$o/st.out" "$o/st.err" "$RC"
    if [[ ! -s $report ]]; then
        problem "--report $report: no report was written"
    elif ! diff -q "$o/st.out" "$report" >/dev/null; then
        problem "the --report file differs from the printed report"
        attach "report file" "$report"
    else
        note "--report FILE written, the same as the printed report"
    fi
    note "self-test took $MS ms"
    end_step
}

# --- 3. self-test with a Secret Service (gnome-keyring on a private D-Bus session) ---------------

# Runs inside `dbus-run-session`: starts gnome-keyring's secrets component with an unlocked login
# keyring (created in the private HOME with a throwaway password read from stdin), waits until it
# owns org.freedesktop.secrets and has a default collection, runs the self-test, stops the daemon.
# shellcheck disable=SC2016 # expanded by the inner bash
KEYRING_SESSION='
set -u
app=$1 out=$2
call() { dbus-send --session --print-reply=literal --reply-timeout=2000 "$@" 2>>"$out/dbus-send.err"; }
printf %s concord-smoke | gnome-keyring-daemon --unlock --daemonize --components=secrets \
    >"$out/gkd.out" 2>"$out/gkd.err"
rc=$?
if ((rc != 0)); then echo "SMOKE: gnome-keyring-daemon --unlock exited $rc"; exit 97; fi
ready= owned= coll=
for ((i = 0; i < 100; i++)); do
    owned=$(call --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets)
    if [[ $owned == *true* ]]; then
        coll=$(call --dest=org.freedesktop.secrets /org/freedesktop/secrets org.freedesktop.Secret.Service.ReadAlias string:default)
        if [[ $coll == */collection/* ]]; then ready=$coll; break; fi
    fi
    sleep 0.1
done
pid=
if [[ $owned == *true* ]]; then
    pid=$(call --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets)
    pid=${pid//[!0-9]/}
fi
if [[ -z $ready ]]; then
    echo "SMOKE: after 10 s the Secret Service has no default collection (org.freedesktop.secrets owned: ${owned##* }, default alias: ${coll:-none})"
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null; fi
    exit 98
fi
echo "SMOKE: secret service ready (gnome-keyring-daemon pid ${pid:-?}, default collection $(echo $ready))"
QT_QPA_PLATFORM=offscreen "$app" --self-test >"$out/st.out" 2>"$out/st.err"
rc=$?
if [[ -n $pid ]]; then kill "$pid" 2>/dev/null; fi
exit $rc
'

step_keyring() {
    begin_step self-test-keyring
    fresh_env keyring || problem "could not make the private directories"
    local o=$ENV_DIR/out line
    require_tools dbus-run-session:dbus-daemon dbus-send:dbus-bin \
        gnome-keyring-daemon:gnome-keyring || return
    : >"$o/st.out"
    : >"$o/st.err"
    run "$o/session.out" "$o/session.err" dbus-run-session -- "$BASH" -c "$KEYRING_SESSION" keyring-session "$APP" "$o"
    if ((RC == 97 || RC == 98)); then
        problem "$(grep '^SMOKE:' "$o/session.out" | tail -n 1 | sed 's/^SMOKE: //')"
    else
        note "$(grep '^SMOKE:' "$o/session.out" | head -n 1 | sed 's/^SMOKE: //')"
        check_selftest "$o/st.out" "$o/st.err" "$RC"
        line=$(grep -E '^[[:space:]]*\[(PASS|FAIL)\] keyring:' "$o/st.out" | head -n 1 | sed 's/^[[:space:]]*//')
        if [[ -z $line ]]; then
            problem "the self-test printed no keyring line"
        elif [[ $line != '[PASS] keyring: secure backend'* ]]; then
            problem "no secure keyring backend with a Secret Service running: '$line'"
        else
            note "$line"
        fi
    fi
    attach "dbus-run-session stdout" "$o/session.out"
    attach "dbus-run-session stderr" "$o/session.err"
    attach "gnome-keyring-daemon stderr" "$o/gkd.err"
    attach "dbus-send stderr" "$o/dbus-send.err"
    end_step
}

# --- 4. self-test on X11 (xvfb) ------------------------------------------------------------------

step_xvfb() {
    begin_step self-test-xvfb
    fresh_env xvfb || problem "could not make the private directories"
    local o=$ENV_DIR/out
    require_tools xvfb-run:xvfb Xvfb:xvfb xauth:xauth || return
    run "$o/st.out" "$o/st.err" xvfb-run -a -e "$o/xvfb.err" -s "-screen 0 1280x1024x24 -nolisten tcp" \
        env QT_QPA_PLATFORM=xcb "$APP" --self-test
    check_selftest "$o/st.out" "$o/st.err" "$RC"
    check_platform "$o/st.out" xcb
    attach "Xvfb errors" "$o/xvfb.err"
    end_step
}

# --- 4b. self-test on Wayland (weston's headless backend) -----------------------------------------

# Run by `run` in its own bash: $1 the app, $2 the output folder. Exit 97: weston did not start.
# shellcheck disable=SC2016 # expanded by that bash
WAYLAND_SESSION='
weston --backend=headless-backend.so --socket=concord-smoke --idle-time=0 >"$2/weston.log" 2>&1 &
w=$!
for _ in $(seq 100); do [ -S "$XDG_RUNTIME_DIR/concord-smoke" ] && break; sleep 0.1; done
if [ ! -S "$XDG_RUNTIME_DIR/concord-smoke" ]; then kill "$w" 2>/dev/null; exit 97; fi
WAYLAND_DISPLAY=concord-smoke QT_QPA_PLATFORM=wayland "$1" --self-test >"$2/st.out" 2>"$2/st.err"
rc=$?
kill "$w" 2>/dev/null
wait "$w"
exit "$rc"'

step_wayland() {
    begin_step self-test-wayland
    fresh_env wayland || problem "could not make the private directories"
    local o=$ENV_DIR/out
    require_tools weston:weston || return
    : >"$o/st.out"
    : >"$o/st.err"
    run "$o/session.out" "$o/session.err" "$BASH" -c "$WAYLAND_SESSION" wayland-session "$APP" "$o"
    if ((RC == 97)); then
        problem "weston (headless) did not open its socket within 10 s"
    else
        check_selftest "$o/st.out" "$o/st.err" "$RC"
        check_platform "$o/st.out" wayland
    fi
    attach "weston log" "$o/weston.log"
    end_step
}

# --- 5. the server: health, then SIGTERM -----------------------------------------------------------

port_in_use() { # a local TCP port bound in any state, IPv4 or IPv6
    local hex _sl local_addr f
    printf -v hex ':%04X' "$1"
    for f in /proc/net/tcp /proc/net/tcp6; do
        [[ -r $f ]] || continue
        while read -r _sl local_addr _; do
            [[ $local_addr == *"$hex" ]] && return 0
        done <"$f"
    done
    return 1
}
free_port() {
    local i p
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 12000)) # below the kernel's ephemeral range (32768-60999)
        port_in_use "$p" || {
            PORT=$p
            return 0
        }
    done
    return 1
}
# group_alive PGID: a process of that group is still running (zombies, which a container's
# init may leave unreaped, do not count; /proc, so no procps needed).
group_alive() {
    local stat rest state pgrp
    for stat in /proc/[0-9]*/stat; do
        IFS= read -r rest <"$stat" 2>/dev/null || continue
        rest=${rest##*) }
        read -r state _ pgrp _ <<<"$rest"
        [[ $pgrp == "$1" && $state != Z && $state != X ]] && return 0
    done
    return 1
}
# http_get PORT PATH OUTFILE: the raw response (headers and body) in OUTFILE; HTTP_STATUS set.
# bash's /dev/tcp: no curl, wget or python3 needed.
http_get() {
    HTTP_STATUS=
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 3 "$BASH" -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 7
        printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n" "$2" "$1" >&3
        cat <&3' http-get "$1" "$2" >"$3" 2>/dev/null || return 1
    IFS=$' \r' read -r _ HTTP_STATUS _ <"$3" || true
    [[ -n $HTTP_STATUS ]]
}

step_server() {
    begin_step server
    fresh_env server || problem "could not make the private directories"
    local o=$ENV_DIR/out attempt pid t0 t_up='' t_stop='' rc deadline body
    local log=$o/server.log resp=$o/health.txt
    for attempt in 1 2 3; do
        if ! free_port; then
            problem "found no free TCP port"
            break
        fi
        : >"$log"
        now_us
        t0=$_US
        # -k: after our SIGTERM, timeout would KILL it this long after (our own limit decides).
        timeout -k $((STOP_WAIT_S + 10)) "$STEP_TIMEOUT" "$SERVER" serve --host 127.0.0.1 \
            --port "$PORT" --data-dir "$ENV_DIR/data/server" --log-level info >"$log" 2>&1 </dev/null &
        pid=$!
        SERVER_PGID=$pid # timeout leads its own process group
        deadline=$((t0 + HEALTH_WAIT_S * 1000000))
        t_up=
        while :; do
            if http_get "$PORT" /api/v1/health "$resp"; then
                now_us
                t_up=$(((_US - t0) / 1000))
                break
            fi
            if ! kill -0 "$pid" 2>/dev/null; then break; fi
            now_us
            ((_US < deadline)) || break
            sleep 0.05
        done
        if [[ -z $t_up ]] && ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            rc=$?
            SERVER_PGID=
            if grep -qiE 'address already in use|errno 98' "$log" && ((attempt < 3)); then
                note "port $PORT was taken meanwhile: another port"
                continue
            fi
            problem "concord-server serve ended before answering: $(rc_text "$rc")"
            attach "server output" "$log"
            end_step
            return
        fi
        break
    done
    [[ -n $SERVER_PGID ]] || {
        end_step
        return
    }
    if [[ -z $t_up ]]; then
        problem "GET /api/v1/health: no answer within ${HEALTH_WAIT_S} s on port $PORT"
    elif [[ $HTTP_STATUS != 200 ]]; then
        problem "GET /api/v1/health answered $HTTP_STATUS, not 200"
        attach "health response" "$resp"
    else
        body=$(<"$resp")
        body=${body#*$'\r\n\r\n'}
        [[ $body =~ \"status\"[[:space:]]*:[[:space:]]*\"ok\" ]] ||
            problem "the health answer does not say \"status\": \"ok\": $body"
        [[ -z $VERSION || $body =~ \"version\"[[:space:]]*:[[:space:]]*\"${VERSION//./\\.}\" ]] ||
            problem "the health answer does not give version $VERSION: $body"
        note "GET /api/v1/health -> 200 after $t_up ms (port $PORT): $body"
    fi
    # Stop: SIGTERM (timeout passes it on to concord-server); it must end by itself, status 0.
    now_us
    t0=$_US
    kill -TERM "$pid" 2>/dev/null
    deadline=$((t0 + STOP_WAIT_S * 1000000))
    while kill -0 "$pid" 2>/dev/null; do
        now_us
        if ((_US >= deadline)); then
            problem "still running ${STOP_WAIT_S} s after SIGTERM: killed"
            kill -KILL -- "-$pid" 2>/dev/null
            break
        fi
        sleep 0.02
    done
    wait "$pid" 2>/dev/null
    rc=$?
    now_us
    t_stop=$(((_US - t0) / 1000))
    if [[ ${STEP_ERRS[*]} != *"after SIGTERM: killed"* ]] && group_alive "$pid"; then
        problem "processes of the server's process group outlived it: killed"
        kill -KILL -- "-$pid" 2>/dev/null
    fi
    SERVER_PGID=
    ((rc == 0)) || problem "after SIGTERM concord-server ended with $(rc_text "$rc"), not exit 0"
    if http_get "$PORT" /api/v1/health "$o/after.txt"; then
        problem "port $PORT still answers after the server ended"
    fi
    grep -q 'Traceback (most recent call last)' "$log" && problem "the server printed a Python traceback"
    grep -qE '(^|[[:space:]])(ERROR|CRITICAL)([[:space:]:]|$)' "$log" && problem "the server logged an error"
    grep -q 'Application shutdown complete' "$log" ||
        problem "the server did not log 'Application shutdown complete' (no clean lifespan shutdown)"
    note "stopped $t_stop ms after SIGTERM, $(rc_text "$rc")"
    attach "server output" "$log"
    end_step
}

# shellcheck source=packaging/smoke/elf.sh
source "$SMOKE_LIB/elf.sh"

# --- 7. time budgets ----------------------------------------------------------------------------

# budget NAME BUDGET_MS CMD...: one warm-up run, then RUNS timed runs in the same private
# environment; the median must be within the budget, and every run must succeed.
budget() {
    local name=$1 limit=$2 i median
    shift 2
    begin_step "$name"
    fresh_env "$name" || problem "could not make the private directories"
    local o=$ENV_DIR/out
    local -a times=()
    run "$o/warmup.out" "$o/warmup.err" "$@"
    if ((RC != 0)); then
        problem "the warm-up run failed: $(rc_text "$RC")"
        attach stdout "$o/warmup.out"
        attach stderr "$o/warmup.err"
        end_step
        return
    fi
    for ((i = 1; i <= RUNS; i++)); do
        run "$o/$i.out" "$o/$i.err" "$@"
        times+=("$MS")
        if ((RC != 0)); then
            problem "run $i failed: $(rc_text "$RC")"
            attach "run $i stdout" "$o/$i.out"
            attach "run $i stderr" "$o/$i.err"
            break
        fi
    done
    if ((${#times[@]} == RUNS)); then
        median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
        note "median $median ms (budget $limit ms); runs: ${times[*]} ms"
        ((median <= limit)) || problem "median $median ms is over the budget of $limit ms"
    fi
    end_step
}

step_budgets() {
    budget budget-version "$BUDGET_VERSION_MS" "$APP" --version
    budget budget-server-version "$BUDGET_VERSION_MS" "$SERVER" --version
    budget budget-self-test "$BUDGET_SELFTEST_MS" env QT_QPA_PLATFORM=offscreen "$APP" --self-test
}

# --- run -------------------------------------------------------------------------------------------

now_us
T_ALL=$_US
echo
step_version
step_selftest
step_keyring
step_xvfb
step_wayland
step_server
step_elf
step_budgets
now_us
T_ALL=$(((_US - T_ALL) / 1000))

echo
echo "Summary"
failed=() skipped=()
for ((i = 0; i < ${#R_NAME[@]}; i++)); do
    printf '  %-22s %-4s %7d ms\n' "${R_NAME[i]}" "${R_STATUS[i]}" "${R_MS[i]}"
    case ${R_STATUS[i]} in FAIL) failed+=("${R_NAME[i]}") ;; skip) skipped+=("${R_NAME[i]}") ;; esac
done
cd -- "$START_DIR" 2>/dev/null || cd /
took="$((T_ALL / 1000)).$((T_ALL % 1000 / 100)) s"
if ((${#failed[@]})); then
    echo "FAIL: ${#failed[@]} of ${#R_NAME[@]} steps failed (${failed[*]}) in $took: $PREFIX"
    exit 1
fi
passed="all ${#R_NAME[@]} steps passed"
((${#skipped[@]} == 0)) || passed="$((${#R_NAME[@]} - ${#skipped[@]})) steps passed, ${#skipped[@]} skipped (${skipped[*]})"
echo "PASS: $passed in $took: $PREFIX"
exit 0
