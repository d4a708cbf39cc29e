#!/usr/bin/env bash
# Seeds the cargo-fuzz corpora fuzz/corpus/<target>/ from hex vectors:
#
#   * fuzz/seeds/*.hex: the spec digest's byte examples (the same vectors as
#     wire/tests/spec_examples.rs), messages built with the codec, and
#     malformed ones; the protocol is the file name's prefix (asap-, enrp-);
#   * tests/vectors/rsplib-3.4.4/*.hex, when that directory exists;
#   * any directory given as an argument (e.g. ../shared/vectors-prerfc).
#
# Hex files hold one message per line; '#' starts a comment; whitespace and
# colons are ignored, and so is a leading 0x. For vector directories the
# protocol is taken from the file name (containing "asap" or "enrp"); a file
# whose name says neither is seeded as both.
#
# parse_any and round_trip get a selector byte (0x00 ASAP, 0x01 ENRP) and the
# message; params_iter gets the message's parameters (after the 4-byte
# header, and after the two server ids for ENRP). Files are named
# seed-<source>-<line>, so running the script again overwrites, never piles up.
#
# Usage: fuzz/seed-corpus.sh [VECTOR_DIR...]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
corpus="$here/corpus"
mkdir -p "$corpus/parse_any" "$corpus/round_trip" "$corpus/params_iter"

hex2bin() {
    # stdin: hex digits only
    if command -v xxd >/dev/null 2>&1; then
        xxd -r -p
    else
        perl -ne 'chomp; print pack("H*", $_)'
    fi
}

count=0

# seed_one NAME PROTOCOL HEX
seed_one() {
    local name="$1" proto="$2" hex="$3" sel skip
    case "$proto" in
        asap) sel='\x00' skip=5 ;;
        enrp) sel='\x01' skip=13 ;;
    esac
    local tmp
    tmp="$(mktemp)"
    printf '%s' "$hex" | hex2bin >"$tmp"
    { printf "$sel"; cat "$tmp"; } >"$corpus/parse_any/seed-$name"
    cp "$corpus/parse_any/seed-$name" "$corpus/round_trip/seed-$name"
    tail -c "+$skip" "$tmp" >"$corpus/params_iter/seed-$name"
    rm -f "$tmp"
    count=$((count + 1))
}

# seed_file FILE PROTOCOL... : one message per non-comment line.
seed_file() {
    local file="$1"
    shift
    local base n=0 line hex proto
    base="$(basename "$file" .hex)"
    while IFS= read -r line || [[ -n "$line" ]]; do
        n=$((n + 1))
        line="${line%%#*}"
        line="$(printf '%s' "$line" | sed -E 's/^[[:space:]]*0[xX]//')"
        hex="$(printf '%s' "$line" | tr -d ' \t\r:')"
        [[ -z "$hex" ]] && continue
        if [[ ! "$hex" =~ ^([0-9a-fA-F]{2})+$ ]]; then
            echo "seed-corpus: $file:$n: not hex, skipped" >&2
            continue
        fi
        for proto in "$@"; do
            seed_one "$base-$n-$proto" "$proto" "$hex"
        done
    done <"$file"
}

protocols_from_name() {
    case "$(basename "$1")" in
        *enrp*) echo enrp ;;
        *asap*) echo asap ;;
        *) echo asap enrp ;;
    esac
}

for f in "$here"/seeds/*.hex; do
    # shellcheck disable=SC2046
    seed_file "$f" $(protocols_from_name "$f")
done

dirs=("$root/tests/vectors/rsplib-3.4.4" "$@")
for d in "${dirs[@]}"; do
    if [[ ! -d "$d" ]]; then
        echo "seed-corpus: $d: no such directory, skipped" >&2
        continue
    fi
    shopt -s nullglob
    for f in "$d"/*.hex; do
        # shellcheck disable=SC2046
        seed_file "$f" $(protocols_from_name "$f")
    done
    shopt -u nullglob
done

echo "seed-corpus: $count inputs written to $corpus/{parse_any,round_trip,params_iter}"
