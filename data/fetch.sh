#!/usr/bin/env bash
# data/fetch.sh: downloads a public data set that dtrain reads, into this
# folder (data/README.md says where each comes from and how to cite it).
#
#   data/fetch.sh list                      the names below
#   data/fetch.sh movielens-100k            -> data/ml-100k/ (u.data, ...)
#   data/fetch.sh movielens-1m              -> data/ml-1m/ (ratings.dat, ...)
#   data/fetch.sh amazon-CATEGORY           -> data/amazon/CATEGORY_5.json.gz and meta_CATEGORY.json.gz
#                                              (Amazon Reviews 2018, e.g. amazon-Gift_Cards)
# options:
#   --dir DIR     put the files under DIR instead of this folder
#   --force       replace files that are already there (default: refuse, exit 3)
#   --dry-run     print what would be downloaded where, download nothing
#
# Needs curl or wget, and unzip for MovieLens; every download goes to a
# temporary file that is checked (gzip -t / unzip -t) before it replaces
# anything. Mirrors: DTRAIN_AMAZON_BASE and DTRAIN_MOVIELENS_BASE override
# the base addresses. Exit codes: 0 ok, 2 usage, 3 a file is already there,
# 4 a download or check failed.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
amazon_bases=(${DTRAIN_AMAZON_BASE:-https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2
  https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2 https://jmcauley.ucsd.edu/data/amazon_v2})
movielens_base=${DTRAIN_MOVIELENS_BASE:-https://files.grouplens.org/datasets/movielens}
amazon_categories=(AMAZON_FASHION All_Beauty Appliances Arts_Crafts_and_Sewing Automotive Books CDs_and_Vinyl
  Cell_Phones_and_Accessories Clothing_Shoes_and_Jewelry Digital_Music Electronics Gift_Cards
  Grocery_and_Gourmet_Food Home_and_Kitchen Industrial_and_Scientific Kindle_Store Luxury_Beauty
  Magazine_Subscriptions Movies_and_TV Musical_Instruments Office_Products Patio_Lawn_and_Garden Pet_Supplies
  Prime_Pantry Software Sports_and_Outdoors Tools_and_Home_Improvement Toys_and_Games Video_Games)

usage() {
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
die() { # code message
  echo "fetch.sh: $2" >&2
  exit "$1"
}

name= dir=$here force=0 dry=0
while [ $# -gt 0 ]; do
  case $1 in
    --dir) [ $# -ge 2 ] || die 2 "--dir needs a directory"; dir=$2; shift 2 ;;
    --dir=*) dir=${1#--dir=}; shift ;;
    --force) force=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h | --help) usage ;;
    -*) die 2 "unknown option '$1' (see data/fetch.sh --help)" ;;
    *) [ -z "$name" ] || die 2 "one data set at a time ('$name' and '$1')"; name=$1; shift ;;
  esac
done
[ -n "$name" ] || usage

if [ "$name" = list ]; then
  echo "movielens-100k"
  echo "movielens-1m"
  for c in "${amazon_categories[@]}"; do echo "amazon-$c"; done
  exit 0
fi

# what to fetch: pairs of URL candidates (|-separated) and target paths
urls=() targets=() unpack=
case $name in
  movielens-100k | movielens-1m)
    short=${name#movielens-}
    urls=("$movielens_base/ml-$short.zip")
    targets=("$dir/ml-$short")
    unpack=zip
    ;;
  amazon-*)
    cat=${name#amazon-}
    found=0
    for c in "${amazon_categories[@]}"; do [ "$c" = "$cat" ] && found=1; done
    [ $found -eq 1 ] || die 2 "unknown Amazon category '$cat' (data/fetch.sh list shows the names; they are case-sensitive)"
    r="" m=""
    for b in "${amazon_bases[@]}"; do
      r+="${r:+|}$b/categoryFilesSmall/${cat}_5.json.gz"
      m+="${m:+|}$b/metaFiles2/meta_${cat}.json.gz"
    done
    urls=("$r" "$m")
    targets=("$dir/amazon/${cat}_5.json.gz" "$dir/amazon/meta_${cat}.json.gz")
    ;;
  *) die 2 "unknown data set '$name' (data/fetch.sh list shows the names)" ;;
esac

# refuse before downloading anything
if [ $force -eq 0 ]; then
  for t in "${targets[@]}"; do
    [ -e "$t" ] && die 3 "$t is already there; not replacing it (add --force to download it again)"
  done
fi

if [ $dry -eq 1 ]; then
  for k in "${!targets[@]}"; do echo "${urls[k]%%|*} -> ${targets[k]}"; done
  exit 0
fi

if command -v curl >/dev/null 2>&1; then
  get() { curl -fL --retry 3 --connect-timeout 20 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  get() { wget -q --tries=3 --timeout=20 -O "$2" "$1"; }
else
  die 4 "neither curl nor wget is installed (apt-get install curl)"
fi
[ "$unpack" = zip ] && ! command -v unzip >/dev/null 2>&1 && die 4 "unzip is not installed (apt-get install unzip)"

mkdir -p "$dir" || die 4 "cannot create $dir"
tmp=$(mktemp -d "$dir/.fetch.XXXXXX") || die 4 "cannot create a temporary folder in $dir"
trap 'rm -rf "$tmp"' EXIT

for k in "${!targets[@]}"; do
  target=${targets[k]} file=$tmp/download.$k ok=0
  IFS='|' read -r -a candidates <<<"${urls[k]}"
  for url in "${candidates[@]}"; do
    echo "fetch.sh: $url" >&2
    if get "$url" "$file"; then ok=1; break; fi
    echo "fetch.sh: failed; trying the next mirror" >&2
  done
  [ $ok -eq 1 ] || die 4 "could not download ${urls[k]%%|*} (no network? set DTRAIN_AMAZON_BASE or DTRAIN_MOVIELENS_BASE for a mirror)"
  if [ "$unpack" = zip ]; then
    unzip -tq "$file" >/dev/null || die 4 "$url: not a valid zip archive"
    unzip -q "$file" -d "$tmp/unpacked" || die 4 "cannot unpack $url"
    rm -rf "$target"
    mkdir -p "$(dirname "$target")"
    mv "$tmp/unpacked/$(basename "$target")" "$target" || die 4 "the archive lacks $(basename "$target")/"
  else
    gzip -t "$file" 2>/dev/null || die 4 "$url: not a valid gzip file (an error page?)"
    mkdir -p "$(dirname "$target")"
    mv -f "$file" "$target" || die 4 "cannot move the download to $target"
  fi
  echo "fetch.sh: wrote $target" >&2
done
