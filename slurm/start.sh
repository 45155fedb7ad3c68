#!/usr/bin/env bash
# Start a real single-node Slurm on localhost (munged, slurmctld, slurmd), with its configuration,
# state, logs and PID files under one directory, and wait until `sinfo` shows the node idle.
#
#   bash slurm/start.sh [DIR]          # DIR: argument, else $IHS_SLURM_DIR, else /tmp/ihs-slurm
#   export SLURM_CONF=DIR/etc/slurm.conf   # then sbatch, squeue, sinfo, sacct -c talk to it
#   bash slurm/stop.sh [DIR]
#
# Idempotent: daemons already running from DIR (their PID files) are left alone; a node left
# drained or down by an earlier run is resumed. Needs root (no systemd: the daemons are started
# directly) and slurm/install.sh's packages. Nothing is written outside DIR.
#
# Environment (all optional):
#   IHS_SLURM_CPUS      CPUs the node declares (default: nproc). More than nproc adds
#                       SlurmdParameters=config_overrides, so the node is not drained for it (a
#                       testing device: e.g. a head job plus two 1-CPU worker jobs on a 2-core box).
#   IHS_SLURM_MEM_MB    RealMemory (default: 90 % of MemTotal; more than MemTotal drains the node
#                       unless config_overrides is on).
#   IHS_SLURM_PORT      slurmctld port (default 6817); slurmd listens on PORT+1.
#   IHS_SLURM_TIMEOUT   seconds to wait for the node to become idle (default 60).
set -euo pipefail

dir=${1:-${IHS_SLURM_DIR:-/tmp/ihs-slurm}}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
port=${IHS_SLURM_PORT:-6817}
real_cpus=$(nproc --all)
cpus=${IHS_SLURM_CPUS:-$real_cpus}
mem_total_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
mem_mb=${IHS_SLURM_MEM_MB:-$((mem_total_mb * 9 / 10))}
timeout=${IHS_SLURM_TIMEOUT:-60}
conf=$dir/etc/slurm.conf
export SLURM_CONF=$conf

for cmd in munged slurmctld slurmd sinfo scontrol; do
    command -v "$cmd" >/dev/null || { echo "slurm/start.sh: $cmd not found; run slurm/install.sh" >&2; exit 1; }
done

# munged checks permissions: the key directory private (700), the socket directory traversable by
# every user (755), none of them writable by group or other. It also wants every parent of the
# socket traversable by all, which a caller's directory need not be (pytest's temporary directories
# are 700): --force turns that check into a warning; the directories made here are still as above.
mkdir -p "$dir/etc" "$dir/log" "$dir/run" "$dir/state" "$dir/spool" "$dir/munge/key" "$dir/munge/socket" "$dir/munge/lib"
chmod 755 "$dir" "$dir/munge" "$dir/munge/socket" "$dir/run"
chmod 700 "$dir/munge/key" "$dir/munge/lib"
key=$dir/munge/key/munge.key
if [[ ! -s $key ]]; then
    dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
fi
chmod 400 "$key"
socket=$dir/munge/socket/munge.socket.2

node_overrides=""
if (( cpus > real_cpus || mem_mb > mem_total_mb )); then
    node_overrides="SlurmdParameters=config_overrides"
fi
def_mem_per_cpu=$((mem_mb / cpus))
(( def_mem_per_cpu > 2048 )) && def_mem_per_cpu=2048

new_conf=$(cat <<EOF
# Written by slurm/start.sh: single-node Slurm on localhost for ihs_hpc's tests and users' trials.
ClusterName=ihs
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
# no cgroups, no systemd: track job processes by parent pid, bind nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: finished jobs are recorded in a text file that \`sacct -c\` reads
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
# Debian's OpenMPI has no Slurm PMI of its own: ranks are wired up through PMIx (srun --mpi=pmix)
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job without --mem takes DefMemPerCPU per CPU, not the whole node
DefMemPerCPU=$def_mem_per_cpu
ReturnToService=2
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldDebug=info
SlurmdDebug=info
$node_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
)
if [[ -f $conf ]] && [[ $(cat "$conf") != "$new_conf" ]]; then
    # another configuration (ports, CPUs, ...): daemons started with the old one are restarted
    bash "$(dirname "${BASH_SOURCE[0]}")/stop.sh" "$dir"
fi
[[ -f $conf ]] && [[ $(cat "$conf") == "$new_conf" ]] || printf '%s\n' "$new_conf" > "$conf"

alive() {  # alive PIDFILE: the process recorded there runs
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

if ! alive "$dir/run/munged.pid"; then
    rm -f "$socket" "$socket.lock"
    munged --force --socket="$socket" --key-file="$key" --pid-file="$dir/run/munged.pid" \
        --log-file="$dir/log/munged.log" --seed-file="$dir/munge/lib/munged.seed"
fi
for _ in $(seq 50); do [[ -S $socket ]] && break; sleep 0.1; done
[[ -S $socket ]] || { echo "slurm/start.sh: munged did not open $socket; see $dir/log/munged.log" >&2; exit 1; }

started=0
if ! alive "$dir/run/slurmctld.pid"; then
    slurmctld -f "$conf"
    started=1
fi
if ! alive "$dir/run/slurmd.pid"; then
    slurmd -f "$conf" -N localhost
    started=1
fi

# wait for the node: idle (or busy with jobs of an earlier start); resume it if drained or down
deadline=$((SECONDS + timeout))
state=""
while (( SECONDS < deadline )); do
    state=$(sinfo -h -N -n localhost -o %T 2>/dev/null | head -1 || true)
    case $state in
        idle|mixed|allocated|completing) break ;;
        drained|draining|down|down\*|drained\*|fail*|inval*)
            scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.2
done
case $state in
    idle|mixed|allocated|completing) ;;
    *) echo "slurm/start.sh: node localhost is '${state:-unreachable}' after ${timeout}s; see $dir/log/" >&2
       sinfo -N -l -R 2>&1 >&2 || true
       exit 1 ;;
esac
(( started )) && echo "slurm/start.sh: Slurm up in $dir (node localhost: $state, $cpus CPUs, ${mem_mb} MB)" >&2
echo "export SLURM_CONF=$conf"
