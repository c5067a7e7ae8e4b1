#!/usr/bin/env bash
# The test suite and bench/instructions.py on the CPythons Debian ships beyond this machine's.
#
#     bench/other_pythons.sh [--no-bench] [ROOTS_DIR [SUITE ...]]
#     TESTS="tests/asyncio -x" bench/other_pythons.sh --no-bench /var/tmp/loopscope-roots trixie
#     TESTS=tests/tracer/test_format.py BENCH="--only timers" bench/other_pythons.sh
#
# For each Debian SUITE (default: trixie, whose python3 is 3.13, and sid, 3.14) this makes a
# Debian root with debootstrap in ROOTS_DIR/SUITE (default ROOTS_DIR: /var/tmp/loopscope-roots,
# outside the repository), installs python3, its headers, gcc and valgrind there with apt,
# copies the working tree in (tracked and untracked files, not what .gitignore excludes: no
# venv, no compiled extension of this machine's Python), makes a venv in the root, installs
# the project with its test extras, runs `python -m pytest -q` and `python bench/instructions.py`
# (unless --no-bench: callgrind makes it the long part).  A root made once is reused: running
# again copies the tree again and re-runs.  Needs root (debootstrap, chroot, mount) and the
# network to deb.debian.org and PyPI.  Exits non-zero if any suite failed.  TESTS, if set,
# is what pytest is given instead of the whole suite (paths, -k, -x); BENCH, if set, is what
# bench/instructions.py is given (--only, --runtime, --n).
set -euo pipefail

usage() { echo "usage: $0 [--no-bench] [ROOTS_DIR [SUITE ...]]" >&2; exit 2; }

bench=1
if [[ ${1:-} == --no-bench ]]; then bench=0; shift; fi
[[ ${1:-} == -* ]] && usage
roots=${1:-/var/tmp/loopscope-roots}
shift || true
suites=("$@")
[[ ${#suites[@]} -gt 0 ]] || suites=(trixie sid)

repo=$(cd "$(dirname "$0")/.." && pwd)
mirror=http://deb.debian.org/debian
# What the suite and the bench need inside the root: the compiler and headers build
# tracer/_native.c, valgrind is bench/instructions.py's counter, and the suite drives
# Chromium, tmux and pgrep for real (.ci/run installs the first two where they are missing).
packages="python3 python3-venv python3-dev gcc libc6-dev valgrind ca-certificates chromium tmux procps"
venv=/opt/loopscope-venv
src=/src/loopscope
# This machine's CA bundle: the one its TLS connections (pip's to PyPI) are verified with.
host_ca=/etc/ssl/certs/ca-certificates.crt

for tool in debootstrap chroot mount umount mountpoint mknod flock git tar; do
    command -v "$tool" >/dev/null || { echo "loopscope: error: $tool is not installed" \
        "(Debian: apt-get install debootstrap)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "loopscope: error: run as root (debootstrap, chroot, mount)" >&2; exit 1; }

mounted=()  # mount points made by this run, unmounted in reverse order on any exit
unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" || true
    done
    mounted=()
}
trap unmount_all EXIT
trap 'exit 130' INT TERM

# mount_into ROOT DIR ARGS...: mount (ARGS) at ROOT/DIR, first unmounting what a run that was
# killed left there (the root's lock says no other run uses it).  Made private: nothing
# mounted or unmounted under it reaches this machine's own mounts.
mount_into() {
    local target=$1/$2
    shift 2
    while mountpoint -q "$target"; do
        mount --make-rprivate "$target" && umount -R "$target" || return 1
    done
    mount "$@" "$target" || return 1
    mounted+=("$target")
    mount --make-private "$target"
}

# The root's /dev is its own directory, with the device nodes debootstrap made there, never
# this machine's /dev: nothing run inside can remove or replace this machine's /dev/null.
# Only a fresh pseudo-terminal instance (the suite runs programs on a pty) and a tmpfs for
# shared memory (multiprocessing's semaphores) are mounted in it, with /proc.
mount_system() {
    local root=$1
    if [[ ! -c $root/dev/null ]]; then  # something inside removed or replaced the root's own
        rm -f "$root/dev/null" && mknod -m 666 "$root/dev/null" c 1 3 || return 1
    fi
    mount_into "$root" proc -t proc proc || return 1
    mount_into "$root" dev/pts -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts || return 1
    mount_into "$root" dev/shm -t tmpfs -o mode=1777,size=512m tmpfs || return 1
}

make_root() {
    local suite=$1 root=$2
    if [[ -d $root/debootstrap ]]; then
        echo "loopscope: error: $root is a root debootstrap did not finish: remove it and run again" >&2
        return 1
    fi
    if [[ ! -x $root/usr/bin/apt-get ]]; then
        echo "# $suite: debootstrap into $root" >&2
        debootstrap --variant=minbase "$suite" "$root" "$mirror" >&2 || return 1
    fi
    # Name resolution and TLS as on this machine.
    cp --remove-destination /etc/resolv.conf "$root/etc/resolv.conf" || return 1
    cp "$host_ca" "$root/etc/loopscope-host-ca.crt" || return 1
    # The mirror may serve a snapshot of sid whose Release is past its Valid-Until date (the
    # archive re-signs sid daily); its signature is still checked.
    echo 'Acquire::Check-Valid-Until "false";' > "$root/etc/apt/apt.conf.d/99loopscope"
}

# in_root ROOT COMMAND: run a bash COMMAND in the root with a clean environment.  pip on
# this machine is also told about local wheel folders and indexes (pip.conf); they hold this
# machine's Python's wheels only, so inside the root pip uses PyPI, with the host's CA bundle.
in_root() {
    local root=$1
    shift
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=xterm \
        PATH=$venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
        DEBIAN_FRONTEND=noninteractive \
        PIP_CERT=/etc/loopscope-host-ca.crt REQUESTS_CA_BUNDLE=/etc/loopscope-host-ca.crt \
        SSL_CERT_FILE=/etc/loopscope-host-ca.crt \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
        /bin/bash -euo pipefail -c "$*"
}

# Each step of run_suite ends in "|| return 1": it runs as part of an "||" list, where bash
# ignores set -e.
run_suite() {
    local suite=$1 root=$roots/$1
    local lock
    mkdir -p "$root" && exec {lock}>"$root/.loopscope-lock" || return 1
    flock -n "$lock" || { echo "loopscope: error: another run is using $root" >&2; return 1; }
    make_root "$suite" "$root" || return 1
    mount_system "$root" || return 1
    local stamp=$root/.loopscope-packages
    if [[ ! -f $stamp || $(cat "$stamp") != "$packages" ]]; then
        echo "# $suite: apt-get install $packages" >&2
        in_root "$root" "apt-get update -q && apt-get install -y -q --no-install-recommends $packages" >&2 \
            || return 1
        echo "$packages" > "$stamp"
    fi
    echo "# $suite: copying $repo to $src" >&2
    rm -rf "${root:?}$src" && mkdir -p "$root$src" || return 1
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
        | tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$root$src" || return 1
    local version
    version=$(in_root "$root" "python3 -c 'import sys; print(sys.version.split()[0])'") || return 1
    echo "# $suite: Python $version: installing into $venv" >&2
    # The C build is optional for users, not here: one that failed quietly would let the C
    # probe's tests skip.
    in_root "$root" "[ -x $venv/bin/python ] || python3 -m venv $venv
        cd $src && pip install -q -e '.[test]' && python -c 'import tracer._native'" >&2 \
        || { echo "loopscope: error: $suite: the install or the C extension's build failed" >&2
             in_root "$root" "cd $src && gcc -fsyntax-only \$(python3-config --includes) tracer/_native.c" >&2
             return 1; }
    local status=0
    echo "## $suite (Python $version): python -m pytest -q ${TESTS:-}"
    in_root "$root" "cd $src && python -m pytest -q ${TESTS:-}" || status=1
    if [[ $bench == 1 ]]; then
        echo "## $suite (Python $version): python bench/instructions.py ${BENCH:-}"
        in_root "$root" "cd $src && python bench/instructions.py ${BENCH:-}" || status=1
    fi
    return $status
}

failed=()
for suite in "${suites[@]}"; do
    run_suite "$suite" || failed+=("$suite")
    unmount_all  # the root's lock is released with the run (its descriptor closes at exit)
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "loopscope: error: failed on: ${failed[*]}" >&2
    exit 1
fi
