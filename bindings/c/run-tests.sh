#!/usr/bin/env bash
# The C and C++ tests of ringfence's C ABI, run by .ci/test.sh (and by hand:
# `bash bindings/c/run-tests.sh` from anywhere).
#
#  1. installs what it needs from Debian if missing (gcc, g++, valgrind,
#     pkg-config, cpp-httplib, nlohmann-json, python3, and
#     python3-prometheus-client for the gateway test's /metrics parser);
#  2. builds libringfence_c.a and libringfence_c.so in release;
#  3. compiles include/ringfence.h alone, as C99, C11, C++11 and C++17, once
#     and included twice, with -Wall -Wextra -pedantic -Werror;
#  4. checks that the C and C++ snippets of docs/c-and-cpp.md (and the C++
#     one of README.md) are bindings/c/tests/readme_snippet.c and
#     bindings/cpp/tests/readme_snippet.cpp, then builds and runs them;
#  5. builds the C test (tests/test_api.c) and the C++ wrapper's test
#     (../cpp/tests/test_wrapper.cpp) against the static and the shared
#     library, each with -fsanitize=address,undefined and without, runs all
#     eight, and runs the four plain (release) builds under valgrind
#     (--leak-check=full, any error or leak fails);
#  6. builds the example gateway and runs its end-to-end test.
#
# Exits non-zero on the first failure. Honours CARGO_TARGET_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
started=$SECONDS

step() { printf '\n--> %s\n' "$*"; }
fail() {
    printf 'run-tests.sh: %s\n' "$*" >&2
    exit 1
}

step "Debian packages"
need=()
for pkg in gcc g++ valgrind pkg-config libcpp-httplib-dev nlohmann-json3-dev python3; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        need+=("$pkg")
    fi
done
if ((${#need[@]})); then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    echo "installing: ${need[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
    echo "all present"
fi
# The gateway's test parses /metrics with prometheus_client, Debian's, so it
# runs under Debian's python3 (not a python3 a version manager puts first on
# PATH, which would not see the package).
python=/usr/bin/python3
if ! "$python" -c 'import prometheus_client' 2>/dev/null; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    echo "installing: python3-prometheus-client"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends python3-prometheus-client >/dev/null
fi

step "build: cargo build --release -p ringfence-c"
cargo build --release --locked -p ringfence-c
lib="${CARGO_TARGET_DIR:-$root/target}/release"
[ -f "$lib/libringfence_c.a" ] && [ -f "$lib/libringfence_c.so" ] || fail "no libringfence_c in $lib"

work=$(mktemp -d "${TMPDIR:-/tmp}/ringfence-c-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT
warn=(-Wall -Wextra -Werror)
static=("$lib/libringfence_c.a" -lpthread -ldl -lm)
shared=(-L"$lib" -lringfence_c -Wl,-rpath,"$lib" -lpthread)
sanitize=(-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
release=(-O2 -g)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

step "the header alone: C99, C11, C++11, C++17; once and twice"
for lang in "-x c -std=c99" "-x c -std=c11" "-x c++ -std=c++11" "-x c++ -std=c++17"; do
    for twice in "" "-DRF_INCLUDE_TWICE"; do
        # shellcheck disable=SC2086 # $lang and $twice are lists of flags
        gcc $lang $twice "${warn[@]}" -pedantic -Iinclude -fsyntax-only bindings/c/tests/header_alone.c
        echo "ok: $lang ${twice:-(once)}"
    done
done

step "the C and C++ snippets of docs/c-and-cpp.md and README.md"
# The block of language $1 in the Markdown file $3 that follows the first
# mention of the file $2 is that file.
doc_block() {
    awk -v file="$2" -v fence="\`\`\`$1" '
        index($0, file) { armed = 1 }
        armed && $0 == fence { inside = 1; next }
        inside && $0 == "```" { exit }
        inside { print }' "$3"
}
for triple in "c bindings/c/tests/readme_snippet.c docs/c-and-cpp.md" \
    "cpp bindings/cpp/tests/readme_snippet.cpp docs/c-and-cpp.md" \
    "cpp bindings/cpp/tests/readme_snippet.cpp README.md"; do
    read -r lang file doc <<<"$triple"
    out="$work/snippet.$lang.$(basename "$doc")"
    doc_block "$lang" "$file" "$doc" >"$out"
    [ -s "$out" ] || fail "$doc has no \`\`\`$lang block after a mention of $file"
    diff -u "$file" "$out" || fail "the $lang snippet of $doc differs from $file: make them the same"
done
gcc -std=c99 "${warn[@]}" -pedantic -Iinclude bindings/c/tests/readme_snippet.c "${static[@]}" -o "$work/readme-c"
"$work/readme-c"
g++ -std=c++17 "${warn[@]}" -Iinclude -Ibindings/cpp bindings/cpp/tests/readme_snippet.cpp "${static[@]}" -o "$work/readme-cpp"
"$work/readme-cpp"

step "C and C++ tests: static and shared, with ASan+UBSan and without; valgrind"
programs=0
build() { # name lang source link sanitizer...
    local name=$1 lang=$2 source=$3 link=$4
    shift 4
    local -a compiler link_flags
    if [ "$lang" = c ]; then
        compiler=(gcc -std=c11)
    else
        compiler=(g++ -std=c++17 -Ibindings/cpp)
    fi
    if [ "$link" = static ]; then link_flags=("${static[@]}"); else link_flags=("${shared[@]}"); fi
    "${compiler[@]}" "${warn[@]}" "$@" -Iinclude "$source" "${link_flags[@]}" -o "$work/$name"
}
for lang in c cpp; do
    if [ "$lang" = c ]; then source=bindings/c/tests/test_api.c; else source=bindings/cpp/tests/test_wrapper.cpp; fi
    for link in static shared; do
        build "$lang-$link-asan" "$lang" "$source" "$link" "${sanitize[@]}"
        build "$lang-$link" "$lang" "$source" "$link" "${release[@]}"
        printf '%-18s ' "$lang-$link-asan:"
        "$work/$lang-$link-asan" "$work"
        printf '%-18s ' "$lang-$link:"
        "$work/$lang-$link" "$work"
        printf '%-18s ' "valgrind:"
        valgrind -q --leak-check=full --errors-for-leak-kinds=definite,possible --error-exitcode=1 \
            "$work/$lang-$link" "$work"
        programs=$((programs + 3))
    done
done
if [ "$(nm -D "$lib/libringfence_c.so" | awk '$2 == "T" && $3 !~ /^rf_/' | wc -l)" -ne 0 ]; then
    nm -D "$lib/libringfence_c.so" | awk '$2 == "T" && $3 !~ /^rf_/' >&2
    fail "libringfence_c.so exports functions without the rf_ prefix"
fi
echo "libringfence_c.so exports $(nm -D "$lib/libringfence_c.so" | awk '$2 == "T"' | wc -l) functions, all rf_*"

step "the example gateway, end to end"
# shellcheck disable=SC2046 # pkg-config prints a list of flags
g++ -std=c++17 -O2 "${warn[@]}" -Iinclude -Ibindings/cpp bindings/cpp/examples/gateway.cpp "${static[@]}" \
    $(pkg-config --cflags --libs cpp-httplib) -o "$work/gateway"
timeout 120 "$python" bindings/cpp/tests/gateway_test.py "$work/gateway"
programs=$((programs + 2))

printf '\nC and C++ (%d s): %d passed, 0 failed\n' "$((SECONDS - started))" "$programs"
