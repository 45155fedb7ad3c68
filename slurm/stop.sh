#!/usr/bin/env bash
# Stop the Slurm that slurm/start.sh started from DIR: cancel its jobs, then end slurmd, slurmctld
# and munged by the PIDs recorded in DIR/run. Idempotent (nothing running: nothing to do). State,
# configuration and logs stay in DIR for the next start or for reading.
#
#   bash slurm/stop.sh [DIR]           # DIR: argument, else $IHS_SLURM_DIR, else /tmp/ihs-slurm
set -euo pipefail

dir=${1:-${IHS_SLURM_DIR:-/tmp/ihs-slurm}}
[[ -d $dir ]] || exit 0
dir=$(cd "$dir" && pwd)
export SLURM_CONF=$dir/etc/slurm.conf

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# jobs first, while slurmctld and slurmd can still end their steps
if alive "$dir/run/slurmctld.pid" && [[ -f $SLURM_CONF ]]; then
    if [[ -n $(squeue -h -o %i 2>/dev/null) ]]; then
        scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 100); do
            [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.1
        done
    fi
fi

for daemon in slurmd slurmctld munged; do
    pidfile=$dir/run/$daemon.pid
    alive "$pidfile" || { rm -f "$pidfile"; continue; }
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm/stop.sh: $daemon (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
done
