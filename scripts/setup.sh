#!/usr/bin/env bash
# Set up dagprop on a Debian or Ubuntu machine: Graphviz's dot (and a font) where missing,
# then the package itself. With --test, also headless Chromium and the test requirements.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v dot >/dev/null 2>&1 || packages+=(graphviz)
fc-list 2>/dev/null | grep -q . || packages+=(fonts-dejavu-core)
extra=""
if [ "${1:-}" = "--test" ]; then
    command -v chromium >/dev/null 2>&1 || packages+=(chromium)
    extra="[test]"
fi

if [ ${#packages[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "dagprop setup: please install ${packages[*]} with your package manager" \
             "(macOS: brew install graphviz; conda: conda install graphviz)" >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "dagprop setup: installing ${packages[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".${extra}"
