#!/bin/bash
# Server instructions per transaction of one outbox benchmark against the
# server of server.sh: the instructions (callgrind Ir) of every backend the
# benchmark opened, 1200 transactions minus 200, divided by 1000.
# usage: ir.sh DIR TEST-BINARY BENCH-REGEXP
#   cd outbox && go test -c -o /tmp/ob.test .
#   ir.sh /tmp/cg /tmp/ob.test 'Enqueue/writers=1/bare$'
#   ir.sh /tmp/cg /tmp/ob.test 'Enqueue/writers=1/exec\+poll-norelay$'
dir=$1 bin=$2 bench=$3
export EVBUS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable"
run() {
  before=$(ls "$dir"/cg.* | sort)
  "$bin" -test.run '^$' -test.bench "$bench" -test.benchtime "${1}x" >/dev/null
  sleep 4 # the backends write their counts as they exit
  comm -13 <(echo "$before") <(ls "$dir"/cg.* | sort) | xargs grep -h '^summary' | awk '{s += $2} END {print s}'
}
run 200 >/dev/null # a new server's first run pays one-time costs
small=$(run 200); large=$(run 1200)
echo "$bench $(( (large - small) / 1000 )) instructions per transaction"
