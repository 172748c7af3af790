#!/usr/bin/env python3
"""The Docker tier: bzzz in real containers on a private Docker network.

Runs the same checks against two deployments of the image:

* ``compose``: docker-compose.local.yml (3 bootstrap + 5 agent containers on a private bridge
  network, one host, no Swarm mode);
* ``swarm``: ``docker stack deploy -c docker-stack.yml`` (the production stack file), when Swarm
  mode works on this engine (the tier initialises a single-node swarm if there is none and leaves
  it afterwards).

Checks, in order (each bounded in time; every failure names what was expected and what was seen):

1. every container healthy, every agent agrees on one admin;
2. context records written through one agent read back through another;
3. ``docker kill`` of the admin's container: a new admin within seconds, the rest healthy;
4. ``docker network disconnect`` of two agents: the majority keeps an admin, the two report
   degraded; reconnect: one admin again, all healthy;
5. restart of one agent container: same peer id, its stored data kept;
6. a rolling restart of every agent: an admin most of the time, no stored record lost.

Usage: tests/docker/tier.py [compose|swarm|all]   (default all; image from BZZZ_IMAGE or bzzz:latest,
built beforehand by tests/docker/run.sh).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGE = os.environ.get("BZZZ_IMAGE", "bzzz:latest")
AGENTS = 5
RECORDS = 12
# How fresh the admin's heartbeat must be for a node to count it as its admin.
HEARTBEAT_FRESH_MS = 5000


class TierError(Exception):
    """A check failed: the message says what was expected and what was seen."""


def sh(*args: str, check: bool = True, timeout: float = 120, input: bytes | None = None) -> str:
    """Runs a command; returns stdout. Raises TierError naming the command on failure."""
    try:
        p = subprocess.run(args, capture_output=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired:
        raise TierError(f"timed out after {timeout}s: {' '.join(args)}")
    if check and p.returncode != 0:
        raise TierError(
            f"`{' '.join(args)}` exited {p.returncode}: {p.stderr.decode(errors='replace').strip()[-800:]}"
        )
    return p.stdout.decode(errors="replace")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_for(what: str, predicate, timeout: float, interval: float = 1.0):
    """Polls predicate until it returns a truthy value; raises TierError after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = predicate()
            if v:
                return v
            last = v
        except TierError as e:
            last = str(e)
        time.sleep(interval)
    raise TierError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last}")


@dataclass
class NodeView:
    container: str
    peer_id: str | None = None
    status: str | None = None
    admin: str | None = None
    is_admin: bool = False
    fresh: bool = False
    error: str | None = None


@dataclass
class Deployment:
    """What the checks need from a deployment: its containers and how to break them."""

    name: str
    network: str
    records: dict[str, bytes] = field(default_factory=dict)

    def agents(self) -> list[str]:
        raise NotImplementedError

    def running_agents(self) -> list[str]:
        """The agent containers running now (fewer than AGENTS during a restart)."""
        return self.agents()

    def bootstraps(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def after_kill(self, container: str) -> None:
        """Lets the killed container come back the way the orchestrator would bring it back."""

    def rolling_restart(self) -> None:
        raise NotImplementedError

    def restart_one(self, container: str) -> str:
        """Restarts one agent the way an operator would; returns its (possibly new) container."""
        raise NotImplementedError

    # ---- views -----------------------------------------------------------------------------

    def exec(self, container: str, *args: str, timeout: float = 30, input: bytes | None = None,
             check: bool = True) -> str:
        """Runs the image's own CLI inside a container (the image has no shell)."""
        flags = ["-i"] if input is not None else []
        return sh("docker", "exec", *flags, container, "/app/bzzz", *args,
                  timeout=timeout, input=input, check=check)

    def view(self, container: str) -> NodeView:
        v = NodeView(container)
        try:
            s = json.loads(self.exec(container, "status", "--json", "--timeout-secs", "5", timeout=15))
        except (TierError, json.JSONDecodeError) as e:
            v.error = str(e)[:300]
            return v
        v.peer_id = s.get("peer_id")
        v.status = (s.get("health") or {}).get("status")
        e = s.get("election") or {}
        v.is_admin = bool(e.get("is_admin"))
        ago = e.get("last_heartbeat_ms_ago")
        v.fresh = v.is_admin or (ago is not None and ago < HEARTBEAT_FRESH_MS)
        v.admin = e.get("admin") if v.fresh else None
        return v

    def views(self, containers: list[str] | None = None) -> list[NodeView]:
        cs = containers or self.agents()
        with ThreadPoolExecutor(max_workers=len(cs) or 1) as pool:
            return list(pool.map(self.view, cs))

    def docker_health(self, container: str) -> str:
        return sh("docker", "inspect", "-f", "{{.State.Health.Status}}", container).strip()

    def agreed_admin(self, containers: list[str] | None = None) -> str | None:
        """The admin every given node names (fresh heartbeat), exactly one of them is_admin."""
        vs = self.views(containers)
        admins = {v.admin for v in vs}
        if len(admins) != 1 or None in admins:
            return None
        if sum(v.is_admin for v in vs) != 1:
            return None
        return admins.pop()

    def container_of(self, peer_id: str) -> str:
        for v in self.views():
            if v.peer_id == peer_id:
                return v.container
        raise TierError(f"no agent container has peer id {peer_id}")


class Compose(Deployment):
    def __init__(self) -> None:
        project = "bzzzt" + secrets.token_hex(3)
        super().__init__("compose", network=f"{project}_bzzz-internal")
        self.project = project
        self._ids: dict[str, str] = {}
        self.base = ["docker-compose", "-f", os.path.join(REPO, "docker-compose.local.yml"), "-p", project]

    def _cid(self, service: str) -> str:
        # A compose container keeps its id across kill, start and restart; docker-compose itself
        # takes a second or more per call, which would make the samples of a roll sparse.
        if service not in self._ids:
            out = sh(*self.base, "ps", "-q", service).strip()
            if not out:
                raise TierError(f"compose service {service} has no container")
            self._ids[service] = out.splitlines()[0]
        return self._ids[service]

    def agents(self) -> list[str]:
        return [self._cid(f"bzzz-agent-{i}") for i in range(1, AGENTS + 1)]

    def bootstraps(self) -> list[str]:
        return [self._cid(f"dht-bootstrap-{n}") for n in ("walnut", "ironwood", "acacia")]

    def start(self) -> None:
        sh(os.path.join(REPO, "docker", "make-secrets.sh"), "local", timeout=120)
        sh(*self.base, "up", "-d", timeout=300)

    def stop(self) -> None:
        sh(*self.base, "down", "-v", "--remove-orphans", check=False, timeout=300)

    def after_kill(self, container: str) -> None:
        # A killed container is "manually stopped" for Docker's restart policy; bring it back.
        sh("docker", "start", container)

    def restart_one(self, container: str) -> str:
        sh("docker", "restart", "-t", "20", container, timeout=60)
        return container

    def rolling_restart(self) -> None:
        # One at a time, each healthy again before the next, as Swarm's update_config does.
        for c in self.agents():
            sh("docker", "restart", "-t", "20", c, timeout=60)
            wait_for(f"{c[:12]} healthy after restart", lambda: self.view(c).status == "healthy", 90)


class Swarm(Deployment):
    STACK = "bzzz-v2"

    def __init__(self) -> None:
        super().__init__("swarm", network=f"{self.STACK}_bzzz-internal")
        self.initialised_swarm = False

    def _tasks(self, service: str) -> list[str]:
        out = sh("docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={self.STACK}_{service}",
                 "--filter", "status=running")
        return sorted(out.split(), key=self._slot)

    def _slot(self, cid: str) -> int:
        name = sh("docker", "inspect", "-f", "{{index .Config.Labels \"com.docker.swarm.task.name\"}}", cid).strip()
        try:
            return int(name.split(".")[1])
        except (IndexError, ValueError):
            return 0

    def agents(self) -> list[str]:
        ts = self._tasks("bzzz-agent")
        if len(ts) != AGENTS:
            raise TierError(f"expected {AGENTS} running bzzz-agent tasks, saw {len(ts)}")
        return ts

    def running_agents(self) -> list[str]:
        return self._tasks("bzzz-agent")

    def bootstraps(self) -> list[str]:
        return [t for n in ("walnut", "ironwood", "acacia") for t in self._tasks(f"dht-bootstrap-{n}")]

    def start(self) -> None:
        state = sh("docker", "info", "-f", "{{.Swarm.LocalNodeState}}").strip()
        if state != "active":
            sh("docker", "swarm", "init", "--advertise-addr", "127.0.0.1", timeout=60)
            self.initialised_swarm = True
        elif self.STACK in sh("docker", "stack", "ls", "--format", "{{.Name}}").split():
            log(f"[{self.name}] removing a stack {self.STACK} left over from an earlier run")
            self.stop()
        sh(os.path.join(REPO, "docker", "make-secrets.sh"), "swarm", timeout=120)
        env = dict(os.environ, BZZZ_IMAGE=IMAGE)
        subprocess.run(["docker", "stack", "deploy", "-c", os.path.join(REPO, "docker-stack.yml"), self.STACK],
                       check=True, cwd=REPO, env=env, capture_output=True, timeout=120)
        wait_for("5 bzzz-agent tasks running", lambda: len(self._tasks("bzzz-agent")) == AGENTS, 180, 2)

    def stop(self) -> None:
        sh("docker", "stack", "rm", self.STACK, check=False, timeout=120)
        # Tasks and the network go away asynchronously; volumes are left for the operator in
        # production, removed here.
        wait_for("stack containers gone",
                 lambda: not sh("docker", "ps", "-aq", "--filter", f"label=com.docker.stack.namespace={self.STACK}").strip(),
                 120, 2)
        vols = sh("docker", "volume", "ls", "-q", "--filter", f"name={self.STACK}_").split()
        if vols:
            sh("docker", "volume", "rm", "-f", *vols, check=False)
        for s in ("bzzz_walnut_identity", "bzzz_ironwood_identity", "bzzz_acacia_identity",
                  "bzzz_operator_token", "bzzz_operator_token_v2", "bzzz_swarm_key"):
            sh("docker", "secret", "rm", s, check=False)
        for c in ("bzzz_v2_config", "bzzz_v2_config_v3"):
            sh("docker", "config", "rm", c, check=False)
        if self.initialised_swarm:
            sh("docker", "swarm", "leave", "--force", check=False, timeout=60)

    def restart_one(self, container: str) -> str:
        # Not `docker restart`: Swarm would also start a replacement task, and the two would
        # race for the slot's volume (sled's lock). Stop the task's container; Swarm replaces it
        # in the same slot, with the same volume.
        slot = self._slot(container)
        sh("docker", "stop", "-t", "20", container, timeout=60)

        def replaced():
            for c in self._tasks("bzzz-agent"):
                if c != container and self._slot(c) == slot:
                    return c
            return None
        return wait_for(f"a new task in slot {slot}", replaced, 120, 1)

    def rolling_restart(self) -> None:
        # The runbook's command, with a shorter delay than the stack's 30 s to bound the test.
        sh("docker", "service", "update", "--force", "--update-delay", "5s", "--detach=false",
           f"{self.STACK}_bzzz-agent", timeout=900)


# ---- the checks ------------------------------------------------------------------------------

def check_up(d: Deployment) -> None:
    log(f"[{d.name}] waiting for every container healthy and one admin")
    t0 = time.monotonic()
    wait_for("every container healthy (docker health)",
             lambda: all(d.docker_health(c) == "healthy" for c in d.bootstraps() + d.agents()), 180, 2)
    admin = wait_for("one admin named by every agent", lambda: d.agreed_admin(), 120, 2)
    wait_for("every agent healthy (/health)", lambda: all(v.status == "healthy" for v in d.views()), 120, 2)
    log(f"[{d.name}] up in {time.monotonic() - t0:.1f}s, admin {admin}")


def check_live_prometheus(d: Deployment) -> None:
    """A real Prometheus with monitoring/prometheus.yml's jobs and rules scrapes the containers."""
    def ip(c: str) -> str:
        return sh("docker", "inspect", "-f",
                  "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", c).split()[0]
    args = [f"{ip(c)}:8081" for c in d.agents()]
    for c in d.bootstraps():
        args += ["--bootstrap", f"{ip(c)}:8081"]
    log(f"[{d.name}] real Prometheus scraping {len(d.agents())} agents and {len(d.bootstraps())} bootstrap nodes")
    p = subprocess.run([os.path.join(REPO, "tests", "monitoring", "live-prometheus.sh"), "--timeout", "90", *args],
                       capture_output=True, text=True, timeout=300)
    print(p.stdout[-3000:], flush=True)
    if p.returncode != 0:
        raise TierError(f"live Prometheus check failed: {p.stderr[-1500:]}")


def check_records_written(d: Deployment) -> None:
    agents = d.agents()
    for i in range(RECORDS):
        addr = f"ucxl://tier:agent@docker:tier/notes/{d.name}-{i}.md"
        content = f"record {i} of the {d.name} docker tier {secrets.token_hex(8)}\n".encode()
        d.exec(agents[i % len(agents)], "context", "put", addr, input=content, timeout=60)
        d.records[addr] = content
    check_records_readable(d, "after writing")


def check_records_readable(d: Deployment, when: str) -> None:
    agents = d.agents()
    missing = []
    for n, (addr, content) in enumerate(d.records.items()):
        reader = agents[(n + 2) % len(agents)]

        def read():
            got = sh("docker", "exec", reader, "/app/bzzz", "context", "get", addr, timeout=60, check=False)
            return got.encode() == content
        try:
            wait_for(f"{addr} readable", read, 60, 2)
        except TierError:
            missing.append(addr)
    if missing:
        raise TierError(f"{len(missing)} of {len(d.records)} records unreadable {when}: {missing[:3]}")
    log(f"[{d.name}] all {len(d.records)} records readable {when}")


def check_admin_kill(d: Deployment) -> None:
    admin = d.agreed_admin()
    if not admin:
        raise TierError("no agreed admin before the kill")
    victim = d.container_of(admin)
    others = [c for c in d.agents() if c != victim]
    log(f"[{d.name}] docker kill of the admin's container {victim[:12]}")
    t0 = time.monotonic()
    sh("docker", "kill", victim)
    new = wait_for("a new admin among the other agents",
                   lambda: (a := d.agreed_admin(others)) and a != admin and a, 60, 0.5)
    took = time.monotonic() - t0
    log(f"[{d.name}] new admin {new} {took:.1f}s after the kill")
    d.after_kill(victim)
    wait_for("every agent back and healthy", lambda: all(v.status == "healthy" for v in d.views()), 180, 2)
    wait_for("one admin named by every agent", lambda: d.agreed_admin(), 60, 1)
    d.failover_seconds = took  # type: ignore[attr-defined]


def check_partition(d: Deployment) -> None:
    admin = d.agreed_admin()
    agents = d.agents()
    cut = [c for c in agents if d.view(c).peer_id != admin][:2]
    majority = [c for c in agents if c not in cut]
    log(f"[{d.name}] docker network disconnect of two agents {[c[:12] for c in cut]}")
    for c in cut:
        sh("docker", "network", "disconnect", d.network, c)
    try:
        wait_for("the majority keeps one admin", lambda: d.agreed_admin(majority), 60, 1)
        wait_for("the two cut-off agents report degraded",
                 lambda: all(d.view(c).status in ("degraded", "unhealthy") for c in cut), 120, 2)
        seen = {c[:12]: d.view(c).status for c in cut}
        log(f"[{d.name}] majority has an admin; cut-off agents report {seen}")
    finally:
        for c in cut:
            sh("docker", "network", "connect", d.network, c, check=False)
    wait_for("one admin named by every agent after reconnecting", lambda: d.agreed_admin(), 120, 2)
    wait_for("every agent healthy after reconnecting", lambda: all(v.status == "healthy" for v in d.views()), 180, 2)
    log(f"[{d.name}] reconnected: one admin, all healthy")


def check_restart_keeps_identity(d: Deployment) -> None:
    c = d.agents()[-1]
    before = d.view(c)
    stored_before = dht_records(d, c)
    log(f"[{d.name}] restart of {c[:12]} (peer {before.peer_id}, {stored_before} records stored)")
    c = d.restart_one(c)
    after = wait_for("the restarted agent healthy", lambda: (v := d.view(c)).status == "healthy" and v, 120, 2)
    if after.peer_id != before.peer_id:
        raise TierError(f"peer id changed across a restart: {before.peer_id} -> {after.peer_id}")
    stored_after = dht_records(d, c)
    if stored_after < stored_before:
        raise TierError(f"records stored fell across a restart: {stored_before} -> {stored_after}")
    log(f"[{d.name}] same peer id after restart, {stored_after} records stored")


def dht_records(d: Deployment, c: str) -> int:
    """Records in the container's sled DHT store (`dht_records_stored` of /api/status)."""
    s = json.loads(d.exec(c, "status", "--json", "--timeout-secs", "5", timeout=15))
    return int(s.get("dht_records_stored") or 0)


def check_rolling_restart(d: Deployment) -> None:
    samples: list[bool] = []
    stop = threading.Event()

    def sampler() -> None:
        # Does some live agent act as admin right now? (Sampled every second during the roll.)
        while not stop.is_set():
            try:
                samples.append(any(v.is_admin for v in d.views(d.running_agents())))
            except TierError:
                samples.append(False)
            stop.wait(1.0)

    log(f"[{d.name}] rolling restart of every agent")
    t0 = time.monotonic()
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    try:
        d.rolling_restart()
    finally:
        stop.set()
        th.join(timeout=60)
    wait_for("every agent healthy after the rolling restart",
             lambda: all(v.status == "healthy" for v in d.views()), 180, 2)
    wait_for("one admin after the rolling restart", lambda: d.agreed_admin(), 60, 1)
    share = sum(samples) / max(1, len(samples))
    log(f"[{d.name}] rolling restart took {time.monotonic() - t0:.0f}s; an admin in "
        f"{sum(samples)}/{len(samples)} samples ({share:.0%})")
    if share < 0.5:
        raise TierError(f"an admin in only {share:.0%} of the samples during the rolling restart")
    check_records_readable(d, "after the rolling restart")


def runbook(d: Deployment, what: str, command: str, expect: str | None = None, timeout: float = 120,
            attempts: int = 1) -> str:
    """Runs one command of docs/runbook.md as written there (bash, with its AGENT and TOKEN).

    `attempts` > 1 reruns a command that timed out: `docker service logs` sometimes never ends
    when it is called right after a service changed (moby/moby#38640, moby/swarmkit#1956; the
    engine's bug, not bzzz's), and the runbook tells the operator to interrupt and rerun it.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _runbook_once(d, what, command, expect, timeout)
        except _RunbookTimeout as e:
            if attempt == attempts:
                raise TierError(str(e))
            log(f"[{d.name}] {e}; rerunning ({attempt}/{attempts}, a known engine hang)")
            time.sleep(5)
    raise AssertionError("unreachable")


class _RunbookTimeout(Exception):
    pass


def _runbook_once(d: Deployment, what: str, command: str, expect: str | None, timeout: float) -> str:
    agent = sh("docker", "ps", "-q", "-f", "name=bzzz-v2_bzzz-agent.1").split()[0]
    # The runbook curls the published ports (Swarm's routing mesh). The routing mesh does not work
    # on the test engine (its iptables backend), so the same URLs go to agent 1's address on the
    # local docker_gwbridge network, which the host reaches directly.
    full_id = sh("docker", "inspect", "-f", "{{.Id}}", agent).strip()
    bridged = json.loads(sh("docker", "network", "inspect", "docker_gwbridge", "-f", "{{json .Containers}}",
                            check=False) or "{}")
    gw = (bridged.get(full_id) or {}).get("IPv4Address", "").split("/")[0] or "127.0.0.1"
    env = dict(os.environ, AGENT=agent, TOKEN="--token-file=/run/secrets/bzzz_operator_token", NODE=gw)
    try:
        p = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True,
                           timeout=timeout, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        raise _RunbookTimeout(f"runbook command timed out after {timeout}s: {command}")
    if p.returncode != 0:
        raise TierError(f"runbook command failed ({what}): {command}\nexit {p.returncode}: "
                        f"{(p.stderr or p.stdout)[-800:]}")
    if expect is not None and expect not in p.stdout:
        raise TierError(f"runbook command ({what}) printed no {expect!r}: {command}\n{p.stdout[-800:]}")
    log(f"[{d.name}] runbook ok: {what}")
    return p.stdout


def check_runbook_basics(d: Deployment) -> None:
    """The runbook's read-only commands, run as written against the freshly deployed stack."""
    log(f"[{d.name}] running the runbook's read-only commands")
    # Service management and configuration.
    runbook(d, "service list", "docker service ls | grep bzzz", "bzzz-v2_bzzz-agent")
    runbook(d, "service tasks", "docker service ps bzzz-v2_bzzz-agent", "Running")
    runbook(d, "service inspect", "docker service inspect bzzz-v2_bzzz-agent --pretty", "bzzz-v2_bzzz-agent")
    runbook(d, "service args", "docker service inspect bzzz-v2_bzzz-agent --format '{{json .Spec.TaskTemplate.ContainerSpec.Args}}'",
            "--admin-eligible")
    # The log commands run before the scale: the engine's `service logs` hang (see `runbook`) comes
    # after a service changed, and a CI run once saw it three times in a row right after the scale.
    runbook(d, "agent logs", "docker service logs bzzz-v2_bzzz-agent --since 10m --tail 100", None, 40, 4)
    runbook(d, "bootstrap logs", "docker service logs bzzz-v2_dht-bootstrap-walnut --since 1h | tail -5", None,
            40, 4)
    runbook(d, "error lines", "docker service logs bzzz-v2_bzzz-agent --since 1h | grep -E 'ERROR|WARN' | tail -100 || true",
            None, 40, 4)
    runbook(d, "scale", "docker service scale bzzz-v2_bzzz-agent=5")
    runbook(d, "role from the config",
            "docker config inspect bzzz_v2_config --format '{{json .Spec.Data}}' | jq -r . | base64 -d | grep -A2 '^agent:'",
            "role: agent")
    runbook(d, "networks", "docker network ls | grep bzzz && docker network inspect bzzz-v2_bzzz-internal", "bzzz-internal")
    runbook(d, "stats", 'docker stats --no-stream --format "table {{.Container}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}"', "MEM")
    # Health through the published ports and inside an agent.
    runbook(d, "health over the routing mesh", "curl -sf http://$NODE:8081/health | jq '.status'", "healthy")
    runbook(d, "checks over the routing mesh", "curl -sf http://$NODE:8081/health/checks | jq", "replication-health")
    runbook(d, "election over the API", "curl -sf http://$NODE:8080/api/election/status | jq", "voters")
    runbook(d, "bzzz health", "docker exec $AGENT /app/bzzz health", "healthy")
    runbook(d, "bzzz status", "docker exec $AGENT /app/bzzz status", None)
    runbook(d, "bzzz peers", "docker exec $AGENT /app/bzzz peers", None)
    runbook(d, "bzzz election", "docker exec $AGENT /app/bzzz election", None)
    runbook(d, "test-p2p-message", "docker exec $AGENT /app/bzzz test-p2p-message", None, 60)
    runbook(d, "test-dht-operations", "docker exec $AGENT /app/bzzz test-dht-operations", None, 60)
    runbook(d, "election per slot", "for slot in 1 2 3 4 5; do c=$(docker ps -q -f name=bzzz-v2_bzzz-agent.$slot | head -1); "
            "echo \"slot $slot:\"; docker exec $c /app/bzzz election; done", "slot 5")


def check_runbook_commands(d: Deployment) -> None:
    """The runbook's commands that change things, run as written against the Swarm stack."""
    log(f"[{d.name}] running the runbook's commands that change things")
    runbook(d, "trigger-election", "docker exec $AGENT /app/bzzz trigger-election", None, 60)
    wait_for("one admin after trigger-election", lambda: d.agreed_admin(), 60, 1)
    # Operator verbs.
    runbook(d, "peers clear", "docker exec $AGENT /app/bzzz peers clear $TOKEN", None, 60)
    wait_for("the agent back among its peers", lambda: d.view(d.agents()[0]).status == "healthy", 120, 2)
    runbook(d, "dht reprovide", "docker exec $AGENT /app/bzzz dht reprovide $TOKEN", None, 120)
    runbook(d, "dht cache clear", "docker exec $AGENT /app/bzzz dht cache clear $TOKEN", None, 60)
    runbook(d, "reload", "docker exec $AGENT /app/bzzz reload $TOKEN", None, 60)
    runbook(d, "SIGHUP", "docker kill --signal HUP $AGENT", None)
    wait_for("the agent healthy after SIGHUP", lambda: d.view(d.agents()[0]).status == "healthy", 60, 2)
    runbook(d, "backup", "docker exec $AGENT /app/bzzz backup --output /app/data/backup.bzzz $TOKEN && "
            "docker cp $AGENT:/app/data/backup.bzzz /tmp/bzzz-tier-backup.bzzz && test -s /tmp/bzzz-tier-backup.bzzz",
            None, 120)
    check_records_readable(d, "after the operator verbs")
    # Rolling updates: the runbook's commands, with --update-delay 5s to bound the test's time.
    version = sh("docker", "run", "--rm", IMAGE, "--version").split()[1]
    runbook(d, "image, env and limits update",
            f"docker service update --image bzzz:{version} --env-add BZZZ_LOG_LEVEL=debug --limit-memory 2G "
            "--limit-cpu 2 --update-parallelism 1 --update-delay 5s --update-failure-action rollback "
            "bzzz-v2_bzzz-agent", None, 900)
    runbook(d, "operator token rotation",
            "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | docker secret create bzzz_operator_token_v2 - && "
            "docker service update --secret-rm bzzz_operator_token "
            "--secret-add source=bzzz_operator_token_v2,target=bzzz_operator_token,uid=10001,gid=10001,mode=0400 "
            "--update-delay 5s bzzz-v2_bzzz-agent", None, 900)
    runbook(d, "config rotation",
            "docker config create bzzz_v2_config_v3 docker/stack-config.yaml && docker service update "
            "--config-rm bzzz_v2_config "
            "--config-add source=bzzz_v2_config_v3,target=/app/config/config.yaml,uid=10001,gid=10001,mode=0440 "
            "--update-delay 5s bzzz-v2_bzzz-agent", None, 900)
    runbook(d, "restart a bootstrap service", "docker service update --force bzzz-v2_dht-bootstrap-walnut", None, 300)
    wait_for("every agent healthy after the updates", lambda: all(v.status == "healthy" for v in d.views()), 180, 2)
    wait_for("one admin after the updates", lambda: d.agreed_admin(), 60, 1)
    check_records_readable(d, "after the rolling updates")
    # Restore slot 1 from the backup with every agent stopped, as the runbook's restore does.
    runbook(d, "restore",
            "chown 10001:10001 /tmp/bzzz-tier-backup.bzzz && "
            "docker service scale bzzz-v2_bzzz-agent=0 && "
            "for i in $(seq 60); do [ -z \"$(docker ps -q -f label=com.docker.swarm.service.name=bzzz-v2_bzzz-agent)\" ] && break; sleep 1; done && "
            "docker run --rm -v bzzz-v2_agent-data-1:/app/data -v /tmp/bzzz-tier-backup.bzzz:/backup.bzzz:ro " + IMAGE +
            " restore --input /backup.bzzz --data-dir /app/data --force && "
            "docker service scale bzzz-v2_bzzz-agent=5", None, 600)
    wait_for("every agent healthy after the restore", lambda: all(v.status == "healthy" for v in d.views()), 240, 3)
    wait_for("one admin after the restore", lambda: d.agreed_admin(), 120, 2)
    check_records_readable(d, "after stopping every agent and restoring slot 1")


def run(d: Deployment) -> None:
    log(f"[{d.name}] starting")
    try:
        d.start()
        check_up(d)
        if isinstance(d, Swarm):
            check_runbook_basics(d)
        if isinstance(d, Compose):
            # Bridge-network addresses are reachable from the host; overlay ones are not.
            check_live_prometheus(d)
        check_records_written(d)
        check_admin_kill(d)
        check_partition(d)
        check_restart_keeps_identity(d)
        check_rolling_restart(d)
        if isinstance(d, Swarm):
            check_runbook_commands(d)
        log(f"[{d.name}] PASSED (failover {getattr(d, 'failover_seconds', float('nan')):.1f}s)")
    except TierError:
        dump(d)
        raise
    finally:
        d.stop()


def dump(d: Deployment) -> None:
    """On failure: every container's state and last log lines."""
    try:
        for c in d.bootstraps() + d.agents():
            print(f"---- {c[:12]} {d.docker_health(c)}", file=sys.stderr)
            print(sh("docker", "logs", "--tail", "30", c, check=False), file=sys.stderr)
    except TierError as e:
        print(f"(could not dump containers: {e})", file=sys.stderr)


def main() -> int:
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which not in ("compose", "swarm", "all"):
        print(__doc__, file=sys.stderr)
        return 2
    deployments: list[Deployment] = []
    if which in ("compose", "all"):
        deployments.append(Compose())
    if which in ("swarm", "all"):
        deployments.append(Swarm())
    for d in deployments:
        try:
            run(d)
        except TierError as e:
            log(f"[{d.name}] FAILED: {e}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
