"""A one-node SLURM cluster on localhost for tests/test_slurm.py, with real accounting.

Debian's packages (``apt-get install slurm-wlm slurmdbd munge mariadb-server``, which
``.ci/run`` installs): munged for authentication, MariaDB and slurmdbd for accounting
(submitit reads job states with ``sacct``, so a cancelled job is only seen through it),
slurmctld and slurmd on 127.0.0.1. Everything but munge's socket lives in one folder, on
free ports; the daemons run as the calling user (root in CI) and are stopped by their ids.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

DAEMONS = ("munged", "munge", "mariadbd", "mariadb-install-db", "mariadb", "mariadb-admin",
           "slurmdbd", "slurmctld", "slurmd", "sbatch", "sacct", "sacctmgr", "scancel",
           "squeue", "sinfo")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")  # sacct and sacctmgr use the default one


def missing() -> list[str]:
    """The programs of the cluster that are not installed."""
    return [d for d in DAEMONS if shutil.which(d) is None]


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, ok: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``ok`` until it holds; raise naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > end:
            raise RuntimeError(f"the test cluster: {what} did not come up in {timeout:.0f} s")
        time.sleep(0.3)


def succeeds(*cmd: str, env: dict | None = None) -> bool:
    """Whether a command exits 0."""
    return subprocess.run(cmd, capture_output=True, env=env).returncode == 0


SLURM_CONF = """\
ClusterName={cluster}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
SlurmUser={user}
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={dbd_port}
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
# scancel: SIGTERM, which submitit jobs ignore, then SIGKILL after KillWait (30 s on most
# clusters); 1 s so that a cancelled tiny task dies before it could finish.
KillWait=1
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""

SLURMDBD_CONF = """\
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={dbd_port}
SlurmUser={user}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile={root}/slurmdbd.pid
LogFile={root}/log/slurmdbd.log
"""


class Cluster:
    """Start with :meth:`start`, stop with :meth:`stop`; ``env`` is what clients need."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
        self.procs: list[subprocess.Popen] = []  # started here, stopped in reverse order
        self.own_munge = False

    def _spawn(self, name: str, cmd: list[str], env: dict | None = None) -> None:
        log = (self.root / "log" / f"{name}.out").open("w")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                           env=env or self.env))
        log.close()

    def start(self) -> None:
        """Bring up munge, MariaDB, slurmdbd, slurmctld and slurmd; wait until idle."""
        root, user = self.root, getpass.getuser()
        for sub in ("state", "spool", "log", "db"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        ports = {"ctld_port": free_port(), "d_port": free_port(), "dbd_port": free_port(),
                 "db_port": free_port()}
        fill = {"root": root, "user": user, "cluster": "kk", "cpus": os.cpu_count() or 1,
                **ports}
        (root / "slurm.conf").write_text(SLURM_CONF.format(**fill))
        dbd_conf = root / "slurmdbd.conf"
        dbd_conf.write_text(SLURMDBD_CONF.format(**fill))
        dbd_conf.chmod(0o600)  # slurmdbd refuses a readable file (it holds a password)
        if not succeeds("munge", "-n"):  # no munged on the default socket yet: ours
            MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
            self._spawn("munged", ["munged", "--foreground", "--force",
                                   f"--pid-file={root}/munged.pid",
                                   f"--log-file={root}/log/munged.log",
                                   f"--seed-file={root}/munged.seed"])
            self.own_munge = True
            wait_for("munged", lambda: succeeds("munge", "-n"))
        sock = root / "mysql.sock"
        subprocess.run(["mariadb-install-db", "--user=root", f"--datadir={root}/db",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True)
        self._spawn("mariadbd", ["mariadbd", "--user=root", f"--datadir={root}/db",
                                 f"--socket={sock}", "--bind-address=127.0.0.1",
                                 f"--port={ports['db_port']}", f"--pid-file={root}/db.pid",
                                 f"--log-error={root}/log/mariadb.err"])
        wait_for("MariaDB", lambda: succeeds("mariadb-admin", "-S", str(sock), "ping"))
        subprocess.run(["mariadb", "-S", str(sock), "-u", "root", "-e",
                        "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm'; GRANT ALL ON "
                        "slurm_acct_db.* TO 'slurm'@'127.0.0.1';"], check=True)
        self._spawn("slurmdbd", ["slurmdbd", "-D"], {**self.env, "SLURM_CONF": str(dbd_conf)})
        wait_for("slurmdbd", lambda: succeeds("sacctmgr", "-n", "list", "cluster",
                                              env=self.env))
        subprocess.run(["sacctmgr", "-i", "add", "cluster", "kk"], env=self.env, check=True,
                       capture_output=True)
        self._spawn("slurmctld", ["slurmctld", "-D", "-f", self.env["SLURM_CONF"]])
        wait_for("slurmctld", lambda: succeeds("sinfo", env=self.env))
        self._spawn("slurmd", ["slurmd", "-D", "-f", self.env["SLURM_CONF"], "-N",
                               "localhost"])
        wait_for("the node", lambda: subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
            env=self.env).stdout.strip() == "idle")

    def stop(self) -> None:
        """Cancel every job and stop the daemons started here, by their process ids."""
        subprocess.run(["scancel", "--user", getpass.getuser()], env=self.env,
                       capture_output=True)
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
