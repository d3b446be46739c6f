#!/bin/bash
# prints total CPU ticks of the postgres cluster (postmaster + reaped children + live children)
pm=$(head -1 /tmp/pgb/data/postmaster.pid)
t=$(awk '{print $14+$15+$16+$17}' /proc/$pm/stat)
for c in $(pgrep -P $pm); do t=$((t + $(awk '{print $14+$15}' /proc/$c/stat 2>/dev/null || echo 0))); done
echo $t
