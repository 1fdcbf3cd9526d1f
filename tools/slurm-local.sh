#!/bin/sh
# A one-node Slurm on this machine (Debian's slurm-wlm: slurmctld and slurmd here, munge for
# authentication), then the array script of docs/CLUSTER.md run once through it: `ids extract` on
# the bundled model as N shards (a job array) and the dependent merge job, the merged files compared
# with an unsharded run (apart from provenance). The daemons are stopped at the end. Not part of
# `make check`; needs root (it installs packages when missing and starts daemons).
# Usage: tools/slurm-local.sh [N_SHARDS] (default 4)
set -eu
cd "$(dirname "$0")/.."
REPO=$PWD
N=${1:-4}
BIN=$PWD/build/release/idscope
[ -x "$BIN" ] || { echo "slurm-local: build first (make release)" >&2; exit 1; }
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    echo "slurm-local: installing slurm-wlm and munge"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
W=$(mktemp -d /tmp/idscope-slurm.XXXXXX)
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p "$W/state" "$W/spool" "$W/log" "$W/run"
cat >"$W/slurm.conf" <<EOF
ClusterName=idscope-local
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/run/slurmctld.pid
SlurmdPidFile=$W/run/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$W/slurm.conf"

# munge: the package's key, or one made here; its own socket folder
MUNGE_PID=""
if ! pgrep -x munged >/dev/null 2>&1; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; chmod 400 /etc/munge/munge.key; }
    munged --force
    MUNGE_PID=$(pgrep -n -x munged)
fi
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
stop() {
    for f in "$W/run/slurmd.pid" "$W/run/slurmctld.pid"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    [ -n "$MUNGE_PID" ] && kill "$MUNGE_PID" 2>/dev/null || true
}
trap stop EXIT
i=0
until sinfo -h -o '%T' 2>/dev/null | grep -q idle; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || { echo "slurm-local: the node did not come up; logs in $W/log" >&2; sinfo >&2 || true; exit 1; }
    sleep 1
done
echo "== sinfo"
sinfo

X="ids extract --grid 3 --sizes 0.9,0.6"
cd "$W"
echo "== submit: $N shards of '$X', then the merge"
"$REPO/tools/cluster/submit.sh" "$N" "$W/parts" "$W/merged" "$BIN" $X | tee "$W/jobs"
merge=$(awk '/^merge/ {print $2}' "$W/jobs")
i=0
while squeue -h -j "$merge" 2>/dev/null | grep -q .; do
    i=$((i + 1))
    [ "$i" -lt 600 ] || { echo "slurm-local: jobs still queued after 10 minutes" >&2; squeue >&2; exit 1; }
    sleep 1
done
echo "== squeue is empty; job outputs:"
for f in slurm-*.out; do
    echo "-- $f"
    tr '\r' '\n' <"$f" | grep -v '^ids extract: [0-9]*/[0-9]*$' || true
done
echo "== unsharded run on this machine, and the comparison"
"$BIN" $X --threads 1 --out "$W/whole" 2>/dev/null | tail -n 1 || true
if python3 "$REPO/tests/same_but_prov.py" "$W/whole" "$W/merged"; then
    echo "slurm-local: the merged result equals the unsharded run (provenance aside)"
    rc=0
else
    echo "slurm-local: the merged result differs" >&2
    rc=1
fi
echo "(files in $W)"
exit $rc
