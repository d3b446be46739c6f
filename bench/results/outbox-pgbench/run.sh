#!/bin/bash
# run.sh script N : runs N transactions over 8 clients, prints tps and PG CPU µs per tx
a=$(./pgcpu.sh)
out=$(pgbench -h /tmp/pgb -p 55432 -U postgres -n -M prepared -c 8 -j 2 -t $(( $2 / 8 )) -f $1.sql postgres 2>&1)
b=$(./pgcpu.sh)
tps=$(echo "$out" | awk '/^tps/ {print $3}')
echo "$1 tps=$tps pgcpu_us_per_tx=$(( (b - a) * 10000 / $2 ))"
