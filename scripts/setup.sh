#!/usr/bin/env bash
# Set up dagprop on a Debian or Ubuntu machine, in a virtual environment of its own (.venv),
# so the system Python is never touched: Graphviz's dot (and a font) where missing, then the
# package. With --test, also headless Chromium and the test requirements.
#
# Uses the python3 first on PATH (or $PYTHON); dagprop needs Python 3.11 or newer.
# Installs missing Debian packages with apt-get, through sudo when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.venv
extra=""
if [ "${1:-}" = "--test" ]; then
    extra="[test]"
fi

say() { echo "dagprop setup: $*"; }
fail() { echo "dagprop setup: $*" >&2; exit 1; }

command -v "$python" >/dev/null 2>&1 || fail "no $python on PATH; install Python 3.11 or newer (Debian/Ubuntu: apt-get install python3)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    fail "dagprop needs Python 3.11 or newer; $python is $("$python" -c 'import platform; print(platform.python_version())')"

packages=()
command -v dot >/dev/null 2>&1 || packages+=(graphviz)
# fc-list's whole output, not a pipe into grep -q: under pipefail an early-closing grep can fail the check
fonts=$(fc-list 2>/dev/null || true)
[ -n "$fonts" ] || packages+=(fonts-dejavu-core)
"$python" -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv)
if [ -n "$extra" ]; then
    command -v chromium >/dev/null 2>&1 || packages+=(chromium)
fi

if [ ${#packages[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
        fail "please install ${packages[*]} with your package manager (macOS: brew install graphviz; conda: conda install graphviz)"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing ${packages[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
    say "creating the virtual environment $venv with $python"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".${extra}"
say "ready: $venv/bin/dagprop, and $venv/bin/python for Python (no need to activate it)"
