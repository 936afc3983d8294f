#!/bin/bash
# A quiet sitting after landing: main's binaries against the merged ones, interleaved.
# PMAIN/PLAND: peers-kgstore drivers (../shared/peers/kgstore, kgstore-src pointing at each checkout),
# BMAIN/BLAND: kgstore-bench release binaries of each checkout, OUT: a folder for the JSON lines.
# Baselines prebuilt as ../shared/peers/README.md says (raw-sqlite, indradb). Summarize peers.jsonl
# with ../shared/peers/summarize.py; kgstore-bench lines carry ratio_to_baseline / ops_per_sec.
# Usage: PMAIN=.. PLAND=.. BMAIN=.. BLAND=.. OUT=/tmp/q16 crates/kgstore-bench/scripts/quiet-sitting.sh
set -u
RAW=${RAW:-/tmp/peers-target-raw-sqlite/release/peers-raw-sqlite}
IND=${IND:-/tmp/peers-target-indradb/release/peers-indradb}
mkdir -p $OUT; P=$OUT/peers.jsonl; : > $P
D=${TMPDIR:-/tmp}/quiet-sitting-dir
tag() { sed -E "s/\"engine\": ?\"([^\"]*)\"/\"engine\":\"\\1@$1\"/"; }
run() { rm -rf $D; "$@" --dir $D 2>>$OUT/err.log; rm -rf $D; }
echo "start $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
for i in 1 2 3; do
  run $RAW --nodes 100000 >> $P
  run $PMAIN --nodes 100000 --engine sqlite | tag main >> $P
  run $PLAND --nodes 100000 --engine sqlite | tag land >> $P
  run $IND --nodes 100000 >> $P
  run $PMAIN --nodes 100000 --engine memory | tag main >> $P
  run $PLAND --nodes 100000 --engine memory | tag land >> $P
  echo "round $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
done
for i in 4 5; do
  run $IND --nodes 100000 >> $P
  run $PMAIN --nodes 100000 --engine memory | tag main >> $P
  run $PLAND --nodes 100000 --engine memory | tag land >> $P
  echo "round $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
done
for i in 1 2 3; do
  $BMAIN --backend sqlite,memory --phase backup,restore,commit --nodes 100000 --json-out $OUT/br-main-$i.jsonl > /dev/null 2>>$OUT/err.log
  $BLAND --backend sqlite,memory --phase backup,restore,commit --nodes 100000 --json-out $OUT/br-land-$i.jsonl > /dev/null 2>>$OUT/err.log
  echo "br $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
done
for i in 1 2; do
  $BMAIN --backend sqlite --phase neighbours,neighbour_names,two_hop,traverse,resolve --nodes 100000 --json-out $OUT/rd-main-$i.jsonl > /dev/null 2>>$OUT/err.log
  $BLAND --backend sqlite --phase neighbours,neighbour_names,two_hop,traverse,resolve --nodes 100000 --json-out $OUT/rd-land-$i.jsonl > /dev/null 2>>$OUT/err.log
  echo "rd $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
done
echo "end $(date -u +%T)" >> $OUT/log
