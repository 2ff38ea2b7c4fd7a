#!/usr/bin/env bash
# Source this on the GPU machine before running a binary built with `--features cuda`:
#     source docs/gpu/cuda-libs.sh   (or a copy carried with the working tree)
# It finds the CUDA 13 libraries that candle (cudarc, dynamic linking) needs there —
# libcuda.so.1 (driver), libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10,
# libnvrtc.so.13 — links them under those names in a temp dir, and sets LD_LIBRARY_PATH.
_valley_links="$(mktemp -d "${TMPDIR:-/tmp}/valley-cuda.XXXXXX")"
_valley_found="$_valley_links/found.txt"
_valley_roots=()
for r in /opt /usr/local/cuda-13* /usr/local/cuda /usr/local/nvidia /usr/lib/x86_64-linux-gnu /usr/lib64; do
  [ -d "$r" ] && _valley_roots+=("$r")
done
timeout 120 find "${_valley_roots[@]}" -maxdepth 10 \( -name 'libcuda.so*' -o -name 'libcudart.so*' \
  -o -name 'libcublas.so*' -o -name 'libcublasLt.so*' -o -name 'libcurand.so*' -o -name 'libnvrtc*.so*' \) \
  \( -type f -o -type l \) 2>/dev/null | grep -v -e '/stubs/' -e '/compat/' | sort -u > "$_valley_found"
_valley_ldp="$_valley_links"
_valley_cublas_dir=""
for so in libcuda.so.1 libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
  f=""
  if [ "$so" = libcublasLt.so.13 ] && [ -n "$_valley_cublas_dir" ]; then
    f=$(ls "$_valley_cublas_dir"/libcublasLt.so.13* 2>/dev/null | head -1)
  fi
  [ -z "$f" ] && f=$(grep -E "/${so//./\\.}(\.[0-9.]+)?\$" "$_valley_found" | head -1)
  [ -z "$f" ] && [ "$so" = libcuda.so.1 ] && f=$(grep -E '/libcuda\.so\.[0-9]+\.[0-9]+' "$_valley_found" | head -1)
  if [ -z "$f" ]; then echo "cuda-libs: MISSING $so" >&2; continue; fi
  d="$(dirname "$f")"
  [ "$so" = libcublas.so.13 ] && _valley_cublas_dir="$d"
  ln -sf "$(readlink -f "$f")" "$_valley_links/$so"
  case ":$_valley_ldp:" in *":$d:"*) ;; *) _valley_ldp="$_valley_ldp:$d";; esac
done
b=$(grep -E '/libnvrtc-builtins\.so\.13' "$_valley_found" | head -1)
[ -n "$b" ] && _valley_ldp="$_valley_ldp:$(dirname "$b")"
export LD_LIBRARY_PATH="$_valley_ldp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "cuda-libs: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
