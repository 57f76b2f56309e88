#!/usr/bin/env bash
# Installs tapegrad from a build tree into a temporary prefix, then builds tests/consumer against it
# twice, as docs/building.md shows: with CMake (find_package + tapegrad::tapegrad) and with a plain g++
# command line. Runs both programs. Usage: check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/tapegrad/tapegrad.hpp"
test -f "$prefix/include/tapegrad/libtorch.hpp"
test -f "$prefix/include/tapegrad/engine/tensor.hpp"
ls "$prefix"/lib*/cmake/tapegrad/tapegradConfig.cmake "$prefix"/lib*/cmake/tapegrad/tapegradConfigVersion.cmake >/dev/null

echo "== CMake client"
cmake -S "$source/tests/consumer" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer"

echo "== g++ client"
libdir=$(dirname "$(ls "$prefix"/lib*/libtapegrad.a)")
# OpenBLAS's OpenMP build, by its own directory (the system's libopenblas may be another build).
openblas=/usr/lib/$(gcc -print-multiarch)/openblas-openmp
g++ -std=c++20 -O2 -fopenmp -I "$prefix/include/tapegrad" "$source/tests/consumer/main.cpp" \
    -L "$libdir" -ltapegrad -ldnnl -lz \
    -L "$openblas" -lopenblas -Wl,-rpath,"$openblas" -o "$work/consumer_gxx"
"$work/consumer_gxx"
