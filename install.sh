#!/usr/bin/env bash
# Builds bin/workbench: the CLI as one native executable (Native AOT), compiled for this machine's CPU (AVX-512 or
# AVX2 code when /proc/cpuinfo has them). Needs the .NET 10 SDK and a C toolchain as the native linker (gcc or clang,
# with binutils' objcopy; Debian: apt-get install gcc binutils). Extra arguments go to dotnet publish.
# The build runs in its own artifacts folder (out/native-build), so the JIT build in src/*/bin is left as it is.
set -euo pipefail
cd "$(dirname "$0")"
command -v clang >/dev/null || command -v gcc >/dev/null || { echo "install.sh: no C compiler for the native link (apt-get install gcc binutils)" >&2; exit 2; }
command -v objcopy >/dev/null || command -v llvm-objcopy >/dev/null || { echo "install.sh: objcopy is missing (apt-get install binutils)" >&2; exit 2; }
dotnet publish src/Cli -c Release -o bin --artifacts-path out/native-build "$@"
echo "install.sh: built $(pwd)/bin/workbench"
