#!/bin/bash
# rounds.sh ROUNDS BIN... : per round, each binary (order rotated) in its own process runs
# evbus and franz-go+hamba+ce twice (-count 2); ratios.py keeps the second, warm, pass.
rounds=$1; shift
for i in $(seq $rounds); do
  bins=("$@"); n=${#bins[@]}
  for j in $(seq 0 $((n-1))); do
    b=${bins[$(( (i+j) % n ))]}
    echo "# $b round $i"; $b -test.run '^$' -test.bench 'Publish/impl=(evbus|franz-go\+hamba\+ce)$' -test.benchtime 200000x -test.count 2 | grep ^Bench
  done
done
