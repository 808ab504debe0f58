# JupyterHub 3.0 for fleethub's load test (`fleethub loadtest --target jupyterhub` / `--compare jupyterhub`).
#
# The harness (loadtest/src/targets/jupyterhub.ts) starts `jupyterhub -f <this file>` with its parameters in
# LOADTEST_JH_* environment variables, in a fresh temporary working directory. The spawner below
# asks `fleethub loadtest sim-servers` for each user's server: the same virtual single-user servers
# (spawner/src/singleuser, each on its own 127.x.y.z:8888 address) that fleethub gets from kube-sim,
# with the same start time, so both hubs are measured against the same servers on the same machine.
#
# Everything binds 127.0.0.1 on ports the harness picked; nothing listens beyond loopback.

import asyncio
import json
import os
import sys
import time
import uuid

from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient
from traitlets import Unicode

from jupyterhub.spawner import Spawner

c = get_config()  # noqa: F821 (defined by traitlets' config loader)


def param(name, default=None):
    value = os.environ.get("LOADTEST_JH_" + name, default)
    if value is None:
        sys.exit("jupyterhub_config.py: LOADTEST_JH_%s is not set (started outside the harness?)" % name)
    return value


WORK_DIR = param("WORK_DIR")
SIM_URL = param("SIM_SERVERS_URL").rstrip("/")
SIM_TOKEN = param("SIM_SERVERS_TOKEN")

# One HTTP client for every spawner, with room for every concurrent spawn: tornado's shared
# default client allows 10 requests at once and would queue the 11th spawn behind the others.
_client = None


def sim_client():
    global _client
    if _client is None:
        _client = SimpleAsyncHTTPClient(force_instance=True, max_clients=5000)
    return _client


async def sim_request(method, path, body=None, timeout=30):
    req = HTTPRequest(
        SIM_URL + path,
        method=method,
        headers={"Authorization": "token " + SIM_TOKEN, "Content-Type": "application/json"},
        body=None if body is None else json.dumps(body),
        connect_timeout=10,
        request_timeout=timeout,
    )
    return await sim_client().fetch(req, raise_error=False)


class _ServerList:
    """One `GET /servers` answers every poll() for a few seconds.

    JupyterHub polls each running server every `poll_interval` (30 s): one HTTP request per server
    would be 170 requests/s at 5,000 servers, a cost no real deployment pays (LocalProcessSpawner
    checks a pid, KubeSpawner reads its pod reflector, one watch for all pods). This list plays the
    reflector's part: concurrent polls share one fetch, and the list is at most `max_age` old.
    """

    def __init__(self, max_age=10.0):
        self.max_age = max_age
        self.fetched_at = -1e9  # monotonic time the current list was requested
        self.ids = set()
        self._pending = None

    async def get(self):
        if time.monotonic() - self.fetched_at < self.max_age:
            return self.ids, self.fetched_at
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._fetch())
        pending = self._pending
        try:
            await pending
        finally:
            if self._pending is pending and pending.done():
                self._pending = None
        return self.ids, self.fetched_at

    async def _fetch(self):
        asked = time.monotonic()
        res = await sim_request("GET", "/servers")
        if res.code != 200:
            raise RuntimeError("sim-servers GET /servers: %s" % res.code)
        self.ids = {s["id"] for s in json.loads(res.body)["servers"]}
        self.fetched_at = asked


SERVER_LIST = _ServerList()


class SimServersSpawner(Spawner):
    """A user's server is a virtual server in sim-servers.

    start() asks sim-servers for one with this spawner's environment (self.get_env(): API token,
    OAuth client id and callback, service prefix, activity URL and interval, ...), which answers
    once the server listens, after the configured start time and the server's own version check
    against this hub; it returns (ip, port) for the proxy route. poll() and stop() talk to
    sim-servers too. The server id is chosen here, so a stop() during a slow start (JupyterHub's
    start_timeout) cancels that start.
    """

    sim_id = Unicode("")
    started_at = 0.0

    def load_state(self, state):
        super().load_state(state)
        self.sim_id = state.get("sim_id", "")

    def get_state(self):
        state = super().get_state()
        if self.sim_id:
            state["sim_id"] = self.sim_id
        return state

    def clear_state(self):
        super().clear_state()
        self.sim_id = ""

    async def start(self):
        self.sim_id = uuid.uuid4().hex[:16]
        self.started_at = time.monotonic()
        env = self.get_env()
        res = await sim_request(
            "POST", "/servers", {"id": self.sim_id, "env": env}, timeout=self.start_timeout + 30
        )
        if res.code != 201:
            raise RuntimeError("sim-servers refused the server (%s): %s" % (res.code, res.body[:300]))
        server = json.loads(res.body)
        return (server["ip"], server["port"])

    async def poll(self):
        if not self.sim_id:
            return 0
        try:
            ids, fetched_at = await SERVER_LIST.get()
            if self.sim_id in ids:
                return None
            if fetched_at > self.started_at:
                return 0
            # the list predates this server: ask about it alone
            res = await sim_request("GET", "/servers/" + self.sim_id)
            return None if res.code == 200 else 0
        except Exception as err:  # sim-servers briefly unreachable: assume running, as KubeSpawner does
            self.log.warning("poll of %s failed: %s", self.sim_id, err)
            return None

    async def stop(self, now=False):
        if not self.sim_id:
            return
        res = await sim_request("DELETE", "/servers/" + self.sim_id, timeout=60)
        if res.code not in (204, 404):
            raise RuntimeError("sim-servers DELETE (%s): %s" % (res.code, res.body[:300]))


c.JupyterHub.spawner_class = SimServersSpawner
# as fleethub's run (--start-timeout 120): a class start with 5-15 s start times and a queue of spawns
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# how often the virtual servers report activity (the harness's --activity-interval)
c.Spawner.environment = {"JUPYTERHUB_ACTIVITY_INTERVAL": param("ACTIVITY_INTERVAL", "300")}
# the harness's --concurrent-spawn-limit; JupyterHub answers 429 with Retry-After drawn from
# spawn_throttle_retry_range (default 30-60 s), which the simulated users honour: left at default,
# as operators run it
c.JupyterHub.concurrent_spawn_limit = int(param("CONCURRENT_SPAWN_LIMIT", "100"))

# Everyone logs in with the run's password (DummyAuthenticator, as fleethub's dev password); the
# harness's admin user is an admin from the start.
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = param("PASSWORD")
c.Authenticator.admin_users = {param("ADMIN_USER", "lt1uadmin")}

# The load generator's API token: a service holding the admin role. The api scenarios mint a token
# for their admin user through the REST API with it (as fleethub's run mints one with
# `fleethub token`), so the hot endpoints are driven with a user token on both hubs.
c.JupyterHub.services = [{"name": "loadtest", "api_token": param("SERVICE_TOKEN")}]
c.JupyterHub.load_roles = [{"name": "admin", "services": ["loadtest"]}]

# Network: the public proxy, the hub and the proxy's API, all on loopback ports the harness chose.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(param("PUBLIC_PORT"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(param("HUB_PORT"))
# configurable-http-proxy 5.3 from node_modules (Debian's CHP 4.5 does not run on this Node);
# the auth token comes from CONFIGPROXY_AUTH_TOKEN in the environment, as JupyterHub reads it.
c.ConfigurableHTTPProxy.command = [param("NODE"), param("CHP")]
# JupyterHub gives CHP a copy of its own environment: CHP runs as operators run it, without any
# NODE_OPTIONS inherited from whatever started the harness (a test runner's loaders break it).
os.environ.pop("NODE_OPTIONS", None)
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%s" % param("PROXY_API_PORT")
c.ConfigurableHTTPProxy.pid_file = os.path.join(WORK_DIR, "jupyterhub-proxy.pid")
c.ConfigurableHTTPProxy.debug = False

# State in the run's temporary directory: sqlite, JupyterHub's default database, unless the harness
# gives it a Postgres of its own (--jupyterhub-db postgres: set up as fleethub's; the report says which).
c.JupyterHub.db_url = os.environ.get("LOADTEST_JH_DB_URL") or "sqlite:///" + os.path.join(WORK_DIR, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(WORK_DIR, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(WORK_DIR, "jupyterhub.pid")

# Warnings only: fleethub runs with --log-level warn too; JupyterHub's default (INFO) writes an
# access-log line per request, a cost neither hub should pay while being measured.
c.JupyterHub.log_level = "WARN"
c.Application.log_level = "WARN"
# The harness stops the whole run at once (and sim-servers with it): stopping thousands of servers
# one by one at shutdown would only make the run longer. The proxy is stopped with the hub.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.cleanup_proxy = True
# No idle culler on either hub during a run.
