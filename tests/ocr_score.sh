#!/usr/bin/env bash
# bench/ocr_score, the OCR benchmark's scorer: normalization (typographic quotes and dashes, white
# space, empty lines), line breaks counted as characters, pages matched by header, missing pages,
# Tesseract's TSV split into pages and lines.
#   tests/ocr_score.sh OCR_SCORE
set -u
score=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
cd "$tmp" || exit 1
expect() {  # expect WHAT GOT WANT
  [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}
printf 'It\xe2\x80\x99s \xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x80\x94 fine\nsecond line\n' >a.txt
printf 'abc\n' >b.txt
# Page b first: pages are matched by name; ASCII quotes, a hyphen, blank lines and extra spaces
# are no errors; one wrong letter in b is one.
printf '==> x/b.png <==\nabd\n==> x/a.png <==\nIt'"'"'s "quoted" - fine\n\n  second   line \n' >hyp.txt
out=$("$score" --split header --per-page hyp.txt a.txt b.txt) || fail "exit $?"
expect "page a" "$(echo "$out" | grep '^a ')" "a errors=0 ref_chars=32 cer=0.0000"
expect "page b" "$(echo "$out" | grep '^b ')" "b errors=1 ref_chars=3 cer=0.3333"
expect "total" "$(echo "$out" | tail -n 1)" "pages=2 missing=0 errors=1 ref_chars=35 cer=0.0286"
# A page without output counts as empty: all of its characters are errors.
printf '==> x/a.png <==\nIt'"'"'s "quoted" - fine\nsecond line\n' >hyp2.txt
expect "missing page" "$("$score" --split header hyp2.txt a.txt b.txt | tail -n 1)" \
  "pages=2 missing=1 errors=3 ref_chars=35 cer=0.0857"
# A line break is a character: two lines read as one cost one error.
printf 'It'"'"'s "quoted" - fine second line\n' >hyp3.txt
expect "joined lines" "$("$score" --split none hyp3.txt a.txt | tail -n 1)" \
  "pages=1 missing=0 errors=1 ref_chars=32 cer=0.0312"
# Tesseract's TSV: words by page, a new line where the line number changes.
printf 'level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n' >t.tsv
printf '1\t1\t0\t0\t0\t0\t0\t0\t9\t9\t-1\t\n5\t1\t1\t1\t1\t1\t0\t0\t9\t9\t90\tabc\n' >>t.tsv
printf '1\t2\t0\t0\t0\t0\t0\t0\t9\t9\t-1\t\n5\t2\t1\t1\t1\t1\t0\t0\t9\t9\t90\tsecond\n' >>t.tsv
printf '5\t2\t1\t1\t1\t2\t0\t0\t9\t9\t90\tline\n5\t2\t1\t1\t2\t1\t0\t0\t9\t9\t90\tthird\n' >>t.tsv
printf 'abc\n' >p1.txt
printf 'second line\nthird\n' >p2.txt
expect "tesseract tsv" "$("$score" --split tesseract-tsv t.tsv p1.txt p2.txt | tail -n 1)" \
  "pages=2 missing=0 errors=0 ref_chars=20 cer=0.0000"
echo "ocr_score: all checks passed"
