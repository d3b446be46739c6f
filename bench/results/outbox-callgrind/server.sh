#!/bin/bash
# Starts a throwaway PostgreSQL 15 under callgrind on 127.0.0.1:55432; every
# backend writes its instruction counts to $DIR/cg.<pid> when it exits.
# usage: server.sh DIR   (stop it with: pkill -f 'callgrind.*55432')
set -e
dir=${1:?usage: server.sh DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
mkdir -p "$dir" && chown postgres "$dir"
su postgres -c "$bin/initdb -D $dir/data -A trust -U postgres >/dev/null"
su postgres -c "cd $dir && nohup valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=$dir/cg.%p \
  $bin/postgres -D $dir/data -p 55432 -k $dir -c listen_addresses=127.0.0.1 -c autovacuum=off >$dir/server.log 2>&1 &"
until pg_isready -q -h 127.0.0.1 -p 55432; do sleep 1; done
