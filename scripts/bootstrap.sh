#!/usr/bin/env bash
# Install what the project needs on a fresh machine: a virtualenv with the pinned requirements
# and Debian's Chromium for JavaScript pages. Idempotent and quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

fonts_missing() { [ ! -d /usr/share/fonts/opentype/noto ] && [ ! -d /usr/share/fonts/truetype/noto ]; }
if ! command -v chromium >/dev/null 2>&1 || fonts_missing; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Debian's chromium and CJK fonts (JavaScript pages, dashboard screenshots)" >&2
    packages="chromium fonts-noto-cjk fonts-noto-color-emoji"
    apt-get install -y -qq $packages >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $packages >/dev/null; }
  else
    echo "bootstrap: chromium is missing; install it with: sudo apt-get install -y chromium" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ] || [ requirements.txt -nt .venv/.installed ]; then
  echo "bootstrap: installing Python requirements into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  touch .venv/.installed
fi
