#!/usr/bin/env bash
# `make setup-runtimes`: installs the pinned npm and Maven dependencies and builds the C++
# harness. Each language is independent: one that cannot be set up here (no toolchain, a
# registry out of reach) leaves its reason in runtimes/.setup/<language>.txt, which the
# export matrix shows beside that runtime's `skipped`, and the others still build.
# Usage: runtimes/setup.sh PYTHON   (the venv's python: LibTorch comes from its torch wheel)
set -uo pipefail
cd "$(dirname "$0")"
PY="${1:-python3}"
mkdir -p .setup

# step NAME TOOL COMMAND...: runs COMMAND, logging to .setup/NAME.log; on failure the most
# telling line of the log goes to .setup/NAME.txt.
step() {
  local name=$1 tool=$2; shift 2
  local t0=$SECONDS
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$tool not found on PATH" > ".setup/$name.txt"
    echo "runtimes: $name skipped: $tool not found on PATH"
    return
  fi
  if "$@" > ".setup/$name.log" 2>&1; then
    : > ".setup/$name.txt"
    echo "runtimes: $name ready ($((SECONDS - t0)) s)"
  else
    # The first error line; Maven's is a chain of "Failed to ...: " wrappers around the
    # cause ("Could not transfer artifact ...: Unknown host ..."), so keep the cause.
    grep -m1 -E '\[ERROR\]|npm error|CMake Error|error:' ".setup/$name.log" \
      | sed -E 's/\x1b\[[0-9;]*m//g; s/^.*(Could not transfer)/\1/; s/transfer failed for [^ ]*: //;
               s/ -> \[Help 1\]//' | cut -c1-300 > ".setup/$name.txt"
    [ -s ".setup/$name.txt" ] || tail -n1 ".setup/$name.log" > ".setup/$name.txt"
    echo "runtimes: $name FAILED ($((SECONDS - t0)) s): $(cat ".setup/$name.txt")"
  fi
}

step node npm npm --prefix node ci --no-audit --no-fund
step java mvn mvn -q -B -f java/pom.xml package
prefix=$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
if [ -z "$prefix" ]; then
  echo "torch is not importable by $PY" > .setup/cpp.txt
  echo "runtimes: cpp skipped: torch is not importable by $PY"
else
  step cpp cmake sh -c "cmake -S cpp -B cpp/build -DCMAKE_PREFIX_PATH='$prefix' \
    && cmake --build cpp/build -j $(nproc)"
fi
exit 0
