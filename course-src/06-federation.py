# ---
# jupyter:
#   jupytext:
#     formats: notebooks///ipynb,course-src///py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Federation: the producer in one cluster, the consumer in another
#
# **Goal:** run the generator and its adapter in one cluster and echo in a second one, measure what crossing clusters adds to each request, and see what the consumer shows when the producer's side loses its generator.  
# **Time:** about 20 minutes (plus making a second cluster, if you have none).
#
# The loosest coupling in this course: the two programs do not even share a cluster. Cluster A
# runs the `generator` unit (generator + adapter) and **exposes** the adapter outside the cluster
# (a NodePort Service); cluster B runs echo in remote mode, pointed at that address. Nothing in B
# can look A's Service up by name: the address is configuration, handed over between clusters.
#
# ### What this is, and what it is not
#
# "Federation" once named a Kubernetes project: **Federation v1** (a federated API server in
# front of many clusters) and its successor **KubeFed** (Federation v2). Both are retired: the
# KubeFed repository was archived in April 2023 (now `kubernetes-retired/kubefed`), and SIG
# Multicluster works on smaller, separate pieces instead.
#
# What this notebook builds is **static cross-cluster wiring**, by hand: in cluster B a Service
# named `adapter` *without a selector*, plus an EndpointSlice that points at a node address and
# the NodePort of cluster A (`manifests/federation/`). Nothing discovers anything: the address is
# written in, exactly as the claim's name was in notebook 05, and if A's node or port changes, B
# keeps sending requests to the old one.
#
# What people use today to join clusters:
#
# * the **Multi-Cluster Services API** (SIG Multicluster, KEP-1645): a `ServiceExport` in the
#   cluster that runs a Service makes it a `ServiceImport` in every cluster of the *clusterset*,
#   reachable as `<service>.<namespace>.svc.clusterset.local`; implementations include Submariner
#   (Lighthouse), Cilium ClusterMesh and cloud providers' multi-cluster services;
# * **Submariner** or **Cilium ClusterMesh**: pod-to-pod networking and service discovery across
#   clusters;
# * a service mesh in multicluster mode: **Istio** or **Linkerd** (mutual TLS and discovery
#   across clusters);
# * to *place* workloads over many clusters, rather than connect them: **Karmada** or **Open
#   Cluster Management** (OCM).
#
# This needs **two real clusters**. On a machine with one cluster, or none, this notebook still
# runs top to bottom: it measures the single-cluster `service` coupling this would be compared
# with, says exactly what is missing, and how to get it. It never shows a number it did not
# measure.

# %% tags=["parameters"]
runtime = "auto"   # "auto", "local", "docker" or "kubernetes"
interval = 0.5     # seconds between two numbers
duration = 6.0     # seconds we watch
requests = 100     # GET /data per latency distribution
peer = ""          # the second cluster: a kubeconfig context or a kubeconfig file ("": $APPCOUP_PEER_CONTEXT / $APPCOUP_PEER_KUBECONFIG)

# %%
import os

import matplotlib.pyplot as plt
from IPython.display import display

import appcoup_lib as ac
from appcoup_lib import loose
from appcoup_lib.exercises import check_echo_killed_loose, predict, solution
from appcoup_lib.runtimes import availability

if peer:  # the kubernetes runtime reads the second cluster's name from here
    os.environ["APPCOUP_PEER_KUBECONFIG" if os.path.exists(os.path.expanduser(peer)) else "APPCOUP_PEER_CONTEXT"] = peer

rt = ac.runtime_for("service", runtime)
print(f"runtime: {rt.name}")

# %% [markdown]
# ## The picture: two clusters, one endpoint between them
#
# What `federation` builds, drawn from the course's manifests before anything runs (so you see it
# even without two clusters): cluster A holds the generator's pod (generator and adapter, sharing
# a scratch volume and their namespaces), cluster B holds echo's, and the only thing between them
# is a Service `adapter` in cluster B with no selector, whose EndpointSlice holds the address of
# cluster A's NodePort, written in when the app is applied (by the library here; by you, if you
# apply the manifests yourself). Echo shares no namespace and no volume with the other two.

# %%
ac.guide.picture("federation", "kubernetes")

# %% [markdown]
# ## What this machine has
#
# **What to look at:** every line that does not start with `ok`: it is what stands between you
# and the cross-cluster part, with the step that fixes it.

# %%
k8s = availability("kubernetes")
named_peer = os.environ.get("APPCOUP_PEER_CONTEXT") or os.environ.get("APPCOUP_PEER_KUBECONFIG") or ""
missing = []
if not k8s.ok:
    missing.append(f"a Kubernetes cluster: {k8s.detail}" + (f" (fix: {k8s.fix})" if k8s.fix else ""))
if rt.name != "kubernetes":
    missing.append(f"this notebook runs on {rt.name}; federation needs runtime='kubernetes'")
if not named_peer:
    missing.append("a second cluster: set the parameter peer= (a context or a kubeconfig file), or "
                   "APPCOUP_PEER_CONTEXT / APPCOUP_PEER_KUBECONFIG")
print(str(k8s))
print(f"{'ok ' if named_peer else '-- '}peer        {named_peer or 'no second cluster named'}")
federated = not missing
if missing:
    print("\nMissing for the cross-cluster part:")
    for m in missing:
        print(" -", m)
    print("\nHow to get two clusters on a laptop (kind runs Kubernetes in Docker):\n"
          "    kind create cluster --name a\n"
          "    kind create cluster --name b\n"
          "    kubectl config use-context kind-a\n"
          "then run this notebook with runtime='kubernetes', peer='kind-b'.\n"
          "Two contexts of any two real clusters (minikube profiles, k3d, a cloud cluster) do as well.")

# %% [markdown]
# ## The baseline: one cluster (or one engine), through a Service
#
# The same programs coupled in one place, by the `service` scenario of notebook 04: echo reads the
# adapter through a name. Whatever federation adds comes on top of this.

# %%
with rt.up("service", interval=interval, port=0) as svc:
    svc.wait_ready()
    timed = loose.timed_gets(svc, requests)
    baseline = timed.seconds
print(f"service on {rt.name}: p50 {loose.percentile(baseline, 50) * 1000:.2f} ms, "
      f"p99 {loose.percentile(baseline, 99) * 1000:.2f} ms over {len(baseline)} requests, timed {timed.where}")

# %% [markdown]
# ## Across two clusters
#
# Now the federated app itself: the generator's side on cluster A (this runtime's context), echo's
# on cluster B (the peer). With fewer than two clusters nothing starts here, and each cell below
# says what it would have shown.

# %%
fed = None
if federated:
    try:
        fed = rt.up("federation", interval=interval, port=0)
        fed.wait_ready(timeout=120)
        print(f"echo in cluster B serves {fed.url}/data, read from the adapter in cluster A")
    except ac.AppcoupError as e:
        print(e)
        if fed is not None:  # it started but never got ready: take it off both clusters
            fed.down()
            fed = None
else:
    print("Skipped: this needs two clusters (see what is missing above).")

# %% [markdown]
# ### What joins the two clusters, as applied
#
# `ac.guide.wiring(fed)` picks, out of everything the runtime applied, the objects that join the
# clusters. In cluster A: the Service `adapter` of type **NodePort**, which opens one port on
# every node of A for the adapter. It names no `nodePort`, so cluster A allocates one from its
# node-port range (by default 30000-32767). In cluster B: a Service `adapter` with **no selector**
# and, tied to it by the label `kubernetes.io/service-name`, an **EndpointSlice** with one
# endpoint: a node address of cluster A and that node port. For a Service without a selector the
# control plane creates no EndpointSlice and leaves its endpoints alone; the label
# `endpointslice.kubernetes.io/managed-by` says who keeps them instead (here: `appcoup`).
#
# > **What you see on local / docker / kubernetes.** With two clusters (runtime `kubernetes` and a
# > peer), the objects of the live app above: A's Service as sent (no `nodePort`: A chose it),
# > B's slice with the address and port the library wrote in. On `local`, on `docker`, or on
# > `kubernetes` with one cluster, there is no such app: the same objects as
# > `manifests/federation/` writes them, with the pinned port 30080 and the documentation address
# > 192.0.2.10 (which routes nowhere) that the library replaces when it applies them.

# %%
ac.guide.wiring(fed)

# %% [markdown]
# ### Everything applied, and the same by hand
#
# As in notebook 01: `fed.spec()` is what the runtime applied for this app, here one YAML stream
# per cluster (cluster A's first), each headed by its context, its API server and its namespace;
# `fed.commands()` are the `kubectl` lines that do the same by hand, each aimed at its cluster
# (with `--kubeconfig` or `--context` where plain `kubectl` would reach the other one). Copy them
# into a terminal.

# %%
if fed is not None:
    display(fed.spec())
    display(fed.commands())
else:
    print("No federated app here: its spec and commands need two clusters. "
          "The manifests it would apply are in manifests/federation/cluster-a and cluster-b.")

# %% [markdown]
# **Look at it the way you will at work**, on both clusters. Where `kubectl` is installed, the
# next cell runs, for each cluster, its "get" line of `fed.commands()` for real, then what joins
# it to the other one: on cluster A `kubectl get nodes -o wide` (the library wrote the
# `INTERNAL-IP` of a node of A into B's slice) and the `PORT(S)` of its Service `adapter`,
# `8080:<node port>/TCP`; on cluster B the `SELECTOR` of its Service `adapter`, `<none>`, and
# `kubectl get endpointslices -l kubernetes.io/service-name=adapter`, whose `ENDPOINTS` and `PORTS`
# are that address and that node port. Then the last lines echo printed in B, and the `GET /data`
# lines the adapter answered in A: echo's requests, arriving from the other cluster.

# %%
if fed is not None:
    print(ac.guide.at_work(fed))
else:
    print("Skipped: no federated app here. With two clusters this cell runs `kubectl get` on each, "
          "`kubectl get nodes -o wide` on A and `kubectl get endpointslices` on B.")

# %% [markdown]
# ### What crossing costs, and what a crash in A does to B
#
# **What to look at:** the latency curve of `federation` against the baseline (every request
# now leaves cluster B, crosses to a node of cluster A, and comes back), and then what echo in B
# serves while the generator in A is killed and restarted by A alone. (On kubernetes both curves
# are timed inside the cluster, as in 04, not through the port-forward: the line under the plot
# says from which container each was taken.)

# %%
samples = {f"service on {rt.name}": baseline}
fed_timeline = None
if fed is not None:
    try:
        crossing = loose.timed_gets(fed, requests)
        samples["federation: echo in B → adapter in A"] = crossing.seconds
        print(f"federation timed {crossing.where}")
        fed_timeline = ac.watch(fed, duration, actions={
            duration / 4: ("kill the generator in cluster A", lambda: fed.kill("generator"))})
        print({name: st.get("restarts") for name, st in fed.status().items()}, "restarts")
    except ac.AppcoupError as e:
        print(e)
else:
    print("Skipped: this needs two clusters (see what is missing above). Only the baseline was measured.")

loose.plot_latencies(samples, title="latency of GET /data")
plt.show()
for label, xs in samples.items():
    print(f"{label:<40} p50 {loose.percentile(xs, 50) * 1000:7.2f} ms   p99 {loose.percentile(xs, 99) * 1000:7.2f} ms")
if len(samples) > 1:
    crossed = list(samples.values())[1]
    print(f"crossing clusters added {(loose.percentile(crossed, 50) - loose.percentile(baseline, 50)) * 1000:.2f} ms "
          "to the median request" + (" (at least: the baseline went through the Service echo, one hop that the "
                                     "federation's requests, sent inside echo's own pod, did not make)"
                                     if "Service" in timed.where and "Service" not in crossing.where else ""))
if fed_timeline is not None:
    fed_timeline.plot(title="echo in cluster B while cluster A loses its generator")
    plt.show()

# %% [markdown]
# `down()` removes everything of the app from both clusters, as the last lines of `fed.commands()` do.
# (The `with rt.up(...)` blocks of this notebook do that by themselves; we kept `fed` in a plain
# variable to look at it between cells.)

# %%
if fed is not None:
    fed.down()

# %% [markdown]
# ## What federation costs and buys
#
# Each cluster fails, upgrades and scales on its own: the producer's cluster can lose its
# generator, and the consumer keeps answering. Echo keeps no copy: every `GET /data` it serves is
# fetched from the adapter in cluster A at that moment. While the generator is down, the adapter
# still serves the data file as it was (the file lives in the pod's scratch volume, which outlives
# a container restart), so the count flattens, then rises again when A has restarted the
# generator. Were the adapter or the link between the clusters down, echo would answer `502`.
# The costs: every request crosses clusters (the latency you measured), the address is
# configuration that someone must keep right in cluster B, and the adapter is now exposed beyond
# its cluster (a NodePort here; in production, an ingress or a mesh with TLS and authentication).
#
# ## Try it
#
# **Predict:** in the federated app, kill **echo** (in cluster B) instead of the generator. Which
# cluster restarts something, and does cluster A notice at all?
#
# Record the restarts you expect for each of the three containers in the `predict` cell,
# **before** the experiment. **The experiment** (the cell after it) kills echo once in the
# federated app (with one cluster, or none, in the `service` scenario: the same units, in one
# place), waits until `/data` answers again and reads every container's restarts; **check**
# compares your prediction with what it observed.

# %%
predict("06.1", {"generator": ..., "adapter": ..., "echo": ...})   # the restarts of each, after one kill of echo

# %%
with rt.up("federation" if federated else "service", interval=interval, port=0) as trial:
    trial.wait_ready(timeout=120)
    trial.kill("echo")
    trial.wait_until(trial.answers, 60, "echo to answer again")
    trial.wait_until(lambda: trial.status()["echo"]["restarts"] >= 1, 30, "echo's restart to show")
    restarts = {name: st["restarts"] for name, st in trial.status().items()}
print(f"{trial.scenario.name}: restarts {restarts}")

# %%
check_echo_killed_loose(restarts)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# %%solution
# Solution: only echo restarts, in its own unit (its own cluster); nothing on the generator's side
# depends on echo, so nothing there restarts.
solution(check_echo_killed_loose, guess={"generator": 0, "adapter": 0, "echo": 1}, restarts=restarts)

# %% [markdown]
# ## Play with it
#
# The federated app with its **dashboard** (with fewer than two clusters, the `service` baseline
# instead: the same three containers in one place). Press **kill generator**: cluster A restarts
# it, and echo in cluster B keeps answering with the numbers the adapter serves. Press **kill
# echo**: cluster B restarts it, and cluster A never notices. Press **down** when you are done:
# it removes the app from both clusters.

# %%
# The playground has a name of its own: it can stay up while you go on to the next notebook.
app = rt.up("federation" if federated else "service", interval=interval, port=0, name=ac.default_name("play-06"))
app.wait_ready(timeout=120)
app.dashboard()
