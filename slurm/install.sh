#!/usr/bin/env bash
# Install what the local Slurm and the MPI cluster need, from Debian: slurm-wlm (slurmctld, slurmd,
# clients), munge, OpenMPI with PMIx (mpi4py builds against its headers; `srun --mpi=pmix` launches it).
#
#   bash slurm/install.sh        # idempotent: a few dpkg queries and no apt call when all is present
#
# Needs root (apt-get). Called by `make test` before the Python extras `mpi,slurm` are installed.
set -euo pipefail

# slurm-wlm-basic-plugins carries mpi_pmix.so (MpiDefault=pmix)
packages=(slurm-wlm slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge openmpi-bin libopenmpi-dev libpmix-dev)
missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "slurm/install.sh: slurm, munge, OpenMPI and PMIx already installed"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "slurm/install.sh: missing Debian packages ${missing[*]}; run as root (apt-get install)" >&2
    exit 1
fi
echo "slurm/install.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# dpkg's lock may be held by another apt run on a shared machine: wait for it (up to 10 minutes)
apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
apt_get update -qq
# policy-rc.d keeps the packages' maintainer scripts from starting the system daemons: this project
# starts its own slurmctld/slurmd/munged with private config and state (slurm/start.sh)
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT
apt_get install -y -q --no-install-recommends "${missing[@]}"
