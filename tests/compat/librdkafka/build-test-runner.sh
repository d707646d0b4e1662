#!/usr/bin/env bash
# Builds librdkafka's own test runner with its 0077_compaction test, against the librdkafka the
# machine has (Debian's librdkafka1, the library kcat uses), into target/librdkafka-tests/.
#
# The sources are Debian's source package of exactly the installed librdkafka1 version, fetched
# with `apt-get source` through a private apt state under target/ (deb-src entries derived from
# the machine's own apt sources; the system's apt configuration is not touched). Nothing of
# librdkafka is committed here: only this script and the kafka-topics.sh shim.
#
# Only test.c, its helpers and 0077-compaction.c are compiled; every other test's entry point
# in test.c's table is a generated stub that fails if run. So this takes seconds, not the
# minutes of librdkafka's full build.
#
# Usage: build-test-runner.sh OUT_DIR   (run by scripts/install-test-deps.sh)
set -euo pipefail

out=${1:?usage: build-test-runner.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(dpkg-query -W -f='${Version}' librdkafka1 2>/dev/null || true)
if [ -z "$version" ]; then
  echo "librdkafka1 is not installed (kcat brings it)" >&2
  exit 1
fi
upstream=${version%-*}
upstream=${upstream#*:}

apt_dir="$out/apt"
rm -rf "$apt_dir"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d"
# deb-src twins of the machine's Debian sources (deb822 files and one-line lists).
for file in /etc/apt/sources.list.d/*.sources; do
  [ -f "$file" ] || continue
  sed -e 's/^Types:.*/Types: deb-src/' "$file" > "$apt_dir/sources.list.d/$(basename "$file")"
done
: > "$apt_dir/sources.list"
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$file" ] || continue
  sed -n -e 's/^deb \(.*\)$/deb-src \1/p' "$file" >> "$apt_dir/sources.list"
done
apt_options=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_options[@]}" -qq update
src="$out/src"
rm -rf "$src"
mkdir -p "$src"
(cd "$src" && apt-get "${apt_options[@]}" -qq source --download-only "librdkafka=$version")
tar -xzf "$src/librdkafka_${upstream}.orig.tar.gz" -C "$src"
tree="$src/librdkafka-$upstream"
rm -rf "$apt_dir"

# config.h (which codecs the tests may use) comes from librdkafka's own configure script.
(cd "$tree" && ./configure --no-download --disable-ssl --disable-gssapi --disable-curl \
  --disable-lz4-ext >"$out/configure.log" 2>&1)

build="$out/build"
rm -rf "$build"
mkdir -p "$build"
{
  echo '#include <stdio.h>'
  grep -o '_TEST_DECL([0-9A-Za-z_]*)' "$tree/tests/test.c" | sed 's/_TEST_DECL(\(.*\))/\1/' |
    grep -vx '0077_compaction' |
    while read -r name; do
      printf 'int main_%s(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "%s is not built into this runner\\n"); return 1; }\n' "$name" "$name"
    done
} > "$build/stubs.c"
cd "$tree/tests"
for source in test.c rusage.c sockem.c sockem_ctrl.c 0077-compaction.c \
  ../src/tinycthread.c ../src/tinycthread_extra.c ../src/rdlist.c "$build/stubs.c"; do
  gcc -g -O1 -w -I../src -c "$source" -o "$build/$(basename "$source" .c).o"
done
gcc -rdynamic -o "$out/test-runner" "$build"/*.o -l:librdkafka.so.1 -lpthread -lm -ldl
echo "built $out/test-runner (librdkafka $version)"
