#!/usr/bin/env bash
# A throw-away one-node SLURM (Debian 12: Slurm 22.05, munge) on localhost with fake GPUs, for
# tests/test_slurm.py. Runs as root, without systemd or cgroups; every daemon is stopped by the
# PID in its pid file, never by name.
#
#   tests/slurm/cluster.sh install   # apt-get install the daemons (idempotent)
#   tests/slurm/cluster.sh start     # write configs, start munged/slurmctld/slurmd, wait for idle
#   tests/slurm/cluster.sh stop      # scancel every job, then stop the daemons we started
#   tests/slurm/cluster.sh status
#
# Exit status 77: this machine cannot host the test cluster (not root, no apt-get, or a
# slurm.conf that this script did not write); the test turns that into a skip with the reason.
#
# Env: BASE (state, logs, pid files; wiped on start; give stop the same one), CPUS, MEM_MB (what
# the node advertises; more than the machine has is allowed, so GPUs, not cores, limit jobs),
# GPUS (fake GPUs: char devices cloned from /dev/null, which is all Slurm 22.05 checks), SHARDS
# (gres/shard per fake GPU, for jobs that share a GPU).
#
# slurm.conf has to be /etc/slurm/slurm.conf: the slurm-jobstep plugin strips SLURM_CONF from
# the environment before its nested `srun`, which then finds no other configuration.
set -euo pipefail

BASE=${BASE:-/tmp/cnnablate-slurm}
CPUS=${CPUS:-8}
MEM_MB=${MEM_MB:-32768}
GPUS=${GPUS:-2}
SHARDS=${SHARDS:-4} # GPU shards per fake GPU (gres/shard: several jobs share one GPU)
NODE=localhost
CONF_DIR=/etc/slurm
MARK="# written by cnnablate tests/slurm/cluster.sh"

log() { echo "[cluster.sh $(date +%T)] $*" >&2; }
cannot() { echo "cannot run a test cluster here: $*" >&2; exit 77; }

wait_for() { # wait_for SECONDS CMD...: poll CMD until it succeeds
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.2
  done
}

stop_pidfile() { # SIGTERM the process in a pid file, SIGKILL after 15 s
  local pf=$1 pid
  [[ -s $pf ]] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping pid $pid ($pf)"
    kill "$pid" 2>/dev/null || true
    wait_for 15 sh -c "! kill -0 $pid" || { log "pid $pid ignored SIGTERM: SIGKILL"; kill -9 "$pid" || true; }
  fi
  rm -f "$pf"
}

cmd_install() {
  [[ $(id -u) == 0 ]] || cannot "not root"
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null; then
    return 0
  fi
  command -v apt-get >/dev/null || cannot "no apt-get to install slurm"
  export DEBIAN_FRONTEND=noninteractive
  # Without systemd the postinst scripts print "invoke-rc.d: policy-rc.d denied": harmless.
  apt-get update -qq || cannot "apt-get update failed (no network?)"
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
    || cannot "apt-get install slurmctld slurmd slurm-client munge failed"
}

write_configs() {
  if [[ -e $CONF_DIR/slurm.conf ]] && ! grep -qF "$MARK" "$CONF_DIR/slurm.conf"; then
    cannot "$CONF_DIR/slurm.conf exists and is not ours (a real cluster?); not touching it"
  fi
  mkdir -p "$CONF_DIR" "$BASE"/{state,spool,log}
  cat >"$CONF_DIR/slurm.conf" <<EOF
$MARK (BASE=$BASE)
ClusterName=cnnablate-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# advertise more CPUs/memory than the box has: the fake GPUs must be what limits the jobs
SlurmdParameters=config_overrides
ReturnToService=2
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/slurmctld.pid
SlurmdPidFile=$BASE/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# no slurmdbd (sacct fails): finished jobs must stay visible to squeue (the plugin polls it)
# and to scontrol (the test reads start/end times) for the whole test
MinJobAge=600
InactiveLimit=0
KillWait=5
Waittime=0
# without it one job would be given all the node's memory
DefMemPerCPU=256
MailProg=/bin/true
GresTypes=gpu,shard
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:fake:$GPUS,shard:$((GPUS * SHARDS)) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  # Slurm 22.05 drops GPUs without device files and rejects files that are not char devices.
  local i
  for ((i = 0; i < GPUS; i++)); do
    [[ -c /dev/fakegpu$i ]] || { rm -f "/dev/fakegpu$i"; mknod -m 666 "/dev/fakegpu$i" c 1 3; }
  done
  cat >"$CONF_DIR/gres.conf" <<EOF
$MARK
AutoDetect=off
NodeName=$NODE Name=gpu Type=fake File=/dev/fakegpu[0-$((GPUS - 1))]
EOF
  for ((i = 0; i < GPUS; i++)); do
    echo "NodeName=$NODE Name=shard Count=$SHARDS File=/dev/fakegpu$i" >>"$CONF_DIR/gres.conf"
  done
}

start_munge() {
  if [[ -s /run/munge/munged.pid ]] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
    return 0 # someone else's munged: use it, leave it running
  fi
  if [[ ! -s /etc/munge/munge.key ]]; then # normally made by munge's postinst
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged # daemonizes, writes /run/munge/munged.pid
  touch "$BASE/.own-munge"
  wait_for 10 sh -c 'munge -n | unmunge' || { log "munged did not come up"; exit 1; }
}

cmd_start() {
  [[ $(id -u) == 0 ]] || cannot "not root"
  cmd_install
  if [[ -s $BASE/slurmctld.pid ]] && kill -0 "$(cat "$BASE/slurmctld.pid")" 2>/dev/null; then
    cmd_stop # a previous run's cluster: start from scratch
  fi
  rm -rf "$BASE"
  write_configs
  start_munge
  /usr/sbin/slurmctld       # daemonizes
  /usr/sbin/slurmd -N "$NODE" # NodeName is not the hostname
  if ! wait_for 30 sh -c "sinfo -h -n $NODE -o %t | grep -qx idle"; then
    sinfo -N -l || true
    tail -n 20 "$BASE"/log/*.log || true
    exit 1
  fi
  log "cluster up: $(sinfo -h -o '%P %a %D %t %G')"
}

cmd_stop() {
  # Running jobs survive slurmd (slurmstepd is its own process): cancel them first.
  if [[ -s $BASE/slurmctld.pid ]] && kill -0 "$(cat "$BASE/slurmctld.pid")" 2>/dev/null; then
    squeue -h -o %i | xargs -r scancel 2>/dev/null || true
    # shellcheck disable=SC2016 # expanded by the inner sh, on every poll
    wait_for 20 sh -c '[ -z "$(squeue -h -t PD,R,CG,CF,S)" ]' || log "jobs still present at stop"
  fi
  stop_pidfile "$BASE/slurmd.pid"
  stop_pidfile "$BASE/slurmctld.pid"
  if [[ -e $BASE/.own-munge ]]; then
    stop_pidfile /run/munge/munged.pid
    rm -f "$BASE/.own-munge"
  fi
}

cmd_status() {
  local pf
  for pf in "$BASE/slurmctld.pid" "$BASE/slurmd.pid" /run/munge/munged.pid; do
    if [[ -s $pf ]] && kill -0 "$(cat "$pf")" 2>/dev/null; then echo "up   $pf $(cat "$pf")"; else echo "down $pf"; fi
  done
  sinfo -o '%P %a %D %t %G' 2>/dev/null || true
}

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
