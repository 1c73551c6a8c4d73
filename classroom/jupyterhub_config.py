# JupyterHub configuration for the appcoup course: KubeSpawner, one namespace per learner.
#
# Written for `classroom/up`, which sets the CLASSROOM_* variables below and starts the hub as a
# process on this machine (see classroom/README.md for why, and for every knob). Read by
# jupyterhub 6 / jupyterhub-kubespawner 7 (pinned in classroom/classroom.py).
#
# Per learner (username U), in the namespace CLASSROOM_PREFIX-U:
#   ServiceAccount `learner`, Role `learner` (admin on the course's kinds in that namespace only),
#   RoleBinding, ResourceQuota `learner`, LimitRange `learner`; the single-user pod runs as that
#   ServiceAccount with APPCOUP_NAMESPACE=<its namespace> and APPCOUP_LEARNER=U, so the course's
#   kubernetes runtime puts every app into it. Deleting the user (Hub API or admin page) deletes the
#   namespace and everything in it.
# ruff: noqa: F821 (c and get_config come from JupyterHub)

import asyncio
import csv
import json
import os
import secrets
from pathlib import Path

from jupyterhub.auth import Authenticator
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from traitlets import Unicode

E = os.environ.get
STATE = Path(E("CLASSROOM_STATE", "."))
CLASS = E("CLASSROOM_NAME", "appcoup")
PREFIX = E("CLASSROOM_PREFIX", "appcoup-class")
PART_OF = {"app.kubernetes.io/part-of": "appcoup"}
CLASS_LABELS = {**PART_OF, "appcoup.classroom": CLASS}
SIZE = json.loads(E("CLASSROOM_SIZING", "{}"))  # classroom.py's SIZING, possibly overridden by the teacher


def size(key: str) -> str:
    return str(SIZE[key])


# -- who may log in ----------------------------------------------------------------------------
class LearnerFileAuthenticator(Authenticator):
    """Usernames and passwords from a CSV file (`classroom/up --learners N` writes one to hand out on
    slips: name,password per line). Re-read on every login, so the teacher may add a line during class."""

    learners_file = Unicode(str(STATE / "learners.csv"), config=True)

    def _table(self) -> dict[str, str]:
        try:
            with open(self.learners_file, newline="") as f:
                return {r["name"]: r["password"] for r in csv.DictReader(f) if r.get("name")}
        except FileNotFoundError:
            return {}

    async def authenticate(self, handler, data):  # noqa: ANN001
        name, password = (data or {}).get("username", ""), (data or {}).get("password", "")
        want = self._table().get(name)
        if want is not None and password and secrets.compare_digest(want, password):
            return name
        return None


auth = E("CLASSROOM_AUTH", "file")
if auth == "dummy":  # a workshop with one shared password (CLASSROOM_PASSWORD), any username
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = E("CLASSROOM_PASSWORD") or secrets.token_urlsafe(12)
    c.Authenticator.allow_all = True
elif auth == "native":  # learners sign up, the teacher authorizes them (pip install jupyterhub-nativeauthenticator)
    c.JupyterHub.authenticator_class = "native"
    c.NativeAuthenticator.open_signup = False
    c.Authenticator.allow_all = True
else:
    c.JupyterHub.authenticator_class = LearnerFileAuthenticator
    c.Authenticator.allow_all = True  # the file is the list: a name without a line cannot log in
c.Authenticator.admin_users = {E("CLASSROOM_TEACHER", "teacher")}

# The teacher's (and the test's) token: a service with the rights to create users and start servers.
c.JupyterHub.services = [{"name": "classroom-admin", "api_token": (STATE / "admin-token").read_text().strip()}]
c.JupyterHub.load_roles = [{
    "name": "classroom-admin",
    "scopes": ["admin:users", "admin:servers", "list:users", "read:users", "access:servers", "tokens"],
    "services": ["classroom-admin"],
}]

# -- the hub process, the proxy, and where the pods find the hub --------------------------------
c.JupyterHub.bind_url = f"http://{E('CLASSROOM_BIND', '0.0.0.0')}:{E('CLASSROOM_PORT', '8800')}"
c.JupyterHub.hub_bind_url = f"http://{E('CLASSROOM_HUB_IP')}:{E('CLASSROOM_HUB_PORT', '8881')}"
c.JupyterHub.hub_connect_url = f"http://{E('CLASSROOM_HUB_IP')}:{E('CLASSROOM_HUB_PORT', '8881')}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{E('CLASSROOM_PROXY_API_PORT', '8802')}"
c.ConfigurableHTTPProxy.command = [E("CLASSROOM_CHP", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "cookie-secret")
c.JupyterHub.pid_file = str(STATE / "hub.pid")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops the learners' servers
c.JupyterHub.concurrent_spawn_limit = int(E("CLASSROOM_CONCURRENT_SPAWNS", "50"))
c.JupyterHub.shutdown_on_logout = False


# -- the spawner -------------------------------------------------------------------------------
def _rules() -> list[k8s.V1PolicyRule]:
    """Admin on the course's kinds, in the learner's own namespace (a Role: nothing outside it)."""
    every = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
    return [
        k8s.V1PolicyRule(api_groups=[""], verbs=every, resources=[
            "pods", "pods/exec", "pods/portforward", "pods/log", "services", "endpoints",
            "persistentvolumeclaims", "configmaps", "events"]),
        k8s.V1PolicyRule(api_groups=["apps"], verbs=every, resources=[
            "deployments", "deployments/scale", "replicasets", "replicasets/scale"]),
        k8s.V1PolicyRule(api_groups=["discovery.k8s.io"], verbs=every, resources=["endpointslices"]),
        k8s.V1PolicyRule(api_groups=["events.k8s.io"], verbs=["get", "list", "watch"], resources=["events"]),
        # The namespace itself: read only (the runtime may look at its labels), never delete.
        k8s.V1PolicyRule(api_groups=[""], verbs=["get"], resources=["namespaces", "resourcequotas", "limitranges"]),
    ]


class ClassroomSpawner(KubeSpawner):
    """KubeSpawner with the learner's namespace furnished: ServiceAccount, Role, RoleBinding,
    ResourceQuota and LimitRange before the pod starts; the namespace deleted with the user."""

    async def _ensure_namespace(self):  # noqa: ANN202 - KubeSpawner's hook, called before the pod is made
        await super()._ensure_namespace()
        ns, name = self.namespace, "learner"
        labels = {**CLASS_LABELS, "appcoup.hub-user": self.user.name[:63]}
        meta = k8s.V1ObjectMeta(name=name, labels=labels)
        rbac = k8s.RbacAuthorizationV1Api(self.api.api_client)
        objects = [
            (self.api.create_namespaced_service_account, k8s.V1ServiceAccount(metadata=meta)),
            (rbac.create_namespaced_role, k8s.V1Role(metadata=meta, rules=_rules())),
            (rbac.create_namespaced_role_binding, k8s.V1RoleBinding(
                metadata=meta, role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name),
                subjects=[k8s.RbacV1Subject(kind="ServiceAccount", name=name, namespace=ns)])),
            (self.api.create_namespaced_resource_quota, k8s.V1ResourceQuota(metadata=meta, spec=k8s.V1ResourceQuotaSpec(
                hard={"requests.cpu": size("quota_requests_cpu"), "requests.memory": size("quota_requests_memory"),
                      "limits.cpu": size("quota_limits_cpu"), "limits.memory": size("quota_limits_memory"),
                      "pods": size("quota_pods"), "services": size("quota_services"),
                      "persistentvolumeclaims": size("quota_pvcs"), "requests.storage": size("quota_storage")}))),
            (self.api.create_namespaced_limit_range, k8s.V1LimitRange(metadata=meta, spec=k8s.V1LimitRangeSpec(limits=[
                k8s.V1LimitRangeItem(type="Container",
                                     default_request={"cpu": size("app_request_cpu"), "memory": size("app_request_memory")},
                                     default={"cpu": size("app_limit_cpu"), "memory": size("app_limit_memory")})]))),
        ]
        for create, body in objects:
            try:
                await asyncio.wait_for(create(ns, body), self.k8s_api_request_timeout)
            except ApiException as e:
                if e.status != 409:  # there already (a second start): fine
                    self.log.exception("Cannot create %s in %s", type(body).__name__, ns)
                    raise

    def get_env(self):  # noqa: ANN201
        env = super().get_env()
        env["APPCOUP_NAMESPACE"] = self.namespace  # the course's kubernetes runtime: one namespace, this one
        env["APPCOUP_LEARNER"] = self.user.name
        env["APPCOUP_CLASSROOM"] = CLASS
        return env

    async def delete_forever(self):  # noqa: ANN201 - the user is deleted: so is the namespace, apps and all
        await super().delete_forever()
        if not self.enable_user_namespaces or not self.namespace.startswith(PREFIX + "-"):
            return
        try:
            await self.api.delete_namespace(self.namespace, body=k8s.V1DeleteOptions(propagation_policy="Foreground"))
            self.log.info("Deleted the namespace %s of %s", self.namespace, self.user.name)
        except ApiException as e:
            if e.status != 404:
                raise


c.JupyterHub.spawner_class = ClassroomSpawner
c.KubeSpawner.enable_user_namespaces = True
c.KubeSpawner.user_namespace_template = PREFIX + "-{username}"
c.KubeSpawner.user_namespace_labels = {**CLASS_LABELS, "appcoup.hub-user": "{username}",
                                       "app.kubernetes.io/component": "learner-namespace"}
c.KubeSpawner.extra_labels = {**CLASS_LABELS}
c.KubeSpawner.image = E("CLASSROOM_IMAGE", "appcoup/singleuser")
c.KubeSpawner.image_pull_policy = "IfNotPresent"  # loaded on the nodes by classroom/up: nothing is pulled
c.KubeSpawner.service_account = "learner"
c.KubeSpawner.automount_service_account_token = True
c.KubeSpawner.uid = 1000
c.KubeSpawner.gid = 0
c.KubeSpawner.fs_gid = 0
c.KubeSpawner.cpu_guarantee = float(size("server_request_cpu"))
c.KubeSpawner.cpu_limit = float(size("server_limit_cpu"))
c.KubeSpawner.mem_guarantee = size("server_request_memory")
c.KubeSpawner.mem_limit = size("server_limit_memory")
c.KubeSpawner.default_url = "/lab/tree/notebooks/00-setup.ipynb"
c.KubeSpawner.start_timeout = int(E("CLASSROOM_START_TIMEOUT", "600"))
c.KubeSpawner.http_timeout = int(E("CLASSROOM_HTTP_TIMEOUT", "300"))
c.KubeSpawner.environment = {"APPCOUP_PROGRESS": "0"}
# KubeSpawner 7.1's event reflector sorts events by lastTimestamp, which Kubernetes 1.34 leaves empty on
# events.k8s.io-style events ("'<' not supported between NoneType and str" at spawn): off. The spawn
# page then shows no pod events; `kubectl get events -n <learner's namespace>` still does.
c.KubeSpawner.events_enabled = False
extra_env = json.loads(E("CLASSROOM_EXTRA_ENV", "{}"))
if extra_env:
    c.KubeSpawner.environment.update(extra_env)
if E("CLASSROOM_HOME_PVC", "0") == "1":  # homes that survive a server restart (PVC per learner, default class)
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.storage_capacity = E("CLASSROOM_HOME_SIZE", "1Gi")
    c.KubeSpawner.pvc_name_template = "home-{username}"
    c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "home-{username}"}}]
    c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
    c.KubeSpawner.storage_extra_labels = {**CLASS_LABELS}
