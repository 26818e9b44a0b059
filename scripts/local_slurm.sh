#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the tests of `--executor slurm`.
#
#   scripts/local_slurm.sh start    install Debian's slurm-wlm and munge if missing, configure this machine as the
#                                   one CPU node of partition "debug", start munged, slurmctld and slurmd, and wait
#                                   until `sinfo` shows the node idle (idempotent: a running cluster is left as it is)
#   scripts/local_slurm.sh stop     stop the three daemons
#   scripts/local_slurm.sh status   sinfo, or a message saying the cluster is down
#
# Needs root (apt-get, /etc/slurm). Made for containers: no cgroups (ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none), no accounting database. State and logs live in /var/lib/mpt-slurm.
set -euo pipefail

STATE=/var/lib/mpt-slurm
CONF=/etc/slurm/slurm.conf
PARTITION=debug

die() { echo "local_slurm: $*" >&2; exit 1; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sinfo >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || die "installing slurm-wlm and munge needs root (apt-get)"
    echo "local_slurm: installing slurm-wlm and munge (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
}

write_config() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
    cat > "$CONF.new" <<CONF
# written by scripts/local_slurm.sh: one CPU node, no cgroups, no accounting
ClusterName=mpt-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
    mv "$CONF.new" "$CONF"
}

start_munge() {
    if pgrep -x munged >/dev/null; then
        return
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    chmod 0400 /etc/munge/munge.key
    if id munge >/dev/null 2>&1; then
        su -s /bin/sh munge -c "/usr/sbin/munged" || die "munged did not start"
    else
        /usr/sbin/munged --force || die "munged did not start"
    fi
}

node_state() { sinfo -h -N -o "%t" 2>/dev/null | head -n 1; }

start() {
    install_packages
    if [ "$(node_state)" = "idle" ] || [ "$(node_state)" = "mix" ] || [ "$(node_state)" = "alloc" ]; then
        echo "local_slurm: already running"; sinfo; return
    fi
    [ "$(id -u)" = 0 ] || die "starting the cluster needs root"
    write_config
    start_munge
    pgrep -x slurmctld >/dev/null || slurmctld || die "slurmctld did not start (see $STATE/log/slurmctld.log)"
    pgrep -x slurmd >/dev/null || slurmd || die "slurmd did not start (see $STATE/log/slurmd.log)"
    for _ in $(seq 1 60); do
        case "$(node_state)" in
            idle|mix|alloc) echo "local_slurm: started"; sinfo; return ;;
            down*|drain*) scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
    die "the node did not become idle within 60 s"
}

stop() {
    for daemon in slurmd slurmctld munged; do
        pkill -x "$daemon" 2>/dev/null || true
    done
    for _ in $(seq 1 20); do
        pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || pgrep -x munged >/dev/null || break
        sleep 0.5
    done
    echo "local_slurm: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo 2>/dev/null || echo "local_slurm: the cluster is down (scripts/local_slurm.sh start)" ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
