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
# # 04 · Loose coupling through a Service: an API, a name, and independent lives
#
# **Goal:** couple the programs through an HTTP API found by name, then measure what that buys (upgrading and scaling echo alone) and what it costs (latency).  
# **Time:** about 30 minutes.
#
# In a pod the two programs share a file and `localhost`, so they are deployed, scaled and
# replaced together. To let them live apart, they must stop sharing a file: a **Service** carries
# network traffic, never a file. So the generator gets a companion, the **adapter**, a tiny HTTP
# API beside it that serves the data file at `/data`; echo, in *remote mode*, reads its numbers
# from the adapter's URL instead of from a file, and finds the adapter **by name**.
#
# | unit | containers | shares |
# |---|---|---|
# | `generator` | generator + adapter (one pod) | a scratch volume between the two |
# | `echo` | echo, remote mode | nothing: it knows only the name `adapter` |
#
# On `kubernetes` the name is a Service (`adapter.<namespace>.svc.cluster.local`). On `docker` it
# is a network alias on a user-defined network, answered by Docker's embedded DNS. On `local`
# there is no DNS: the runtime hands echo the address in its environment, which is the whole job
# of discovery, done by hand.

# %% tags=["parameters"]
runtime = "auto"   # "auto", "local", "docker" or "kubernetes"
interval = 0.5     # seconds between two numbers
duration = 6.0     # seconds we watch
requests = 200     # GET /data per latency distribution

# %%
import matplotlib.pyplot as plt

import appcoup_lib as ac
from appcoup_lib import loose
from appcoup_lib.exercises import check_service_generator_recreated, predict, solution

rt = ac.runtime_for("service", runtime)
print(f"runtime: {rt.name}")

# %% [markdown]
# ## Start it, and find the adapter by name
#
# **What to look at:** two units, three containers. Then the name `adapter` resolved from
# echo's side: by the cluster's DNS on `kubernetes` or Docker's embedded DNS server on `docker`
# (in both, the server's address is in echo's `/etc/resolv.conf`), or by the local runtime's
# name mapping.

# %%
app = rt.up("service", interval=interval, port=0)
app.wait_ready()
app.status()

# %%
# Two units that share no namespace, only a name: drawn from the running app (live in JupyterLab).
app.diagram()

# %% [markdown]
# ### What was applied, and the same by hand
#
# As in notebook 01: `app.spec()` is what the runtime applied for this app, `app.commands()` the
# commands that do the same by hand. **What to look at:** the objects this coupling needs.

# %%
app.spec()

# %%
app.commands()

# %% [markdown]
# Then the app as you would look at it at work: the CLI's "get" line for real where it is installed,
# and the last lines the container serving `/data` printed.

# %%
print(ac.guide.at_work(app))

# %%
try:
    print(loose.resolve(app, "adapter"))
except ac.AppcoupError as e:
    print(e)

# %% [markdown]
# ## Independent upgrade
#
# We change one line of echo, make the new version (on `docker` and `kubernetes` that is a real
# image build) and roll it out to echo's unit only, while `/data` is requested every 20 ms.
#
# There are two ways to replace a running copy, and Kubernetes names them as the two strategies
# of a Deployment (`spec.strategy.type`):
#
# * **Recreate**: stop the old copy, then start the new one. In between nothing answers.
# * **RollingUpdate** (a Deployment's default): start new copies before the old ones go, within
#   two limits: `maxSurge`, how many copies may run *above* the wanted number, and
#   `maxUnavailable`, how many may be *missing* (both default to 25 %, `maxSurge` rounded up and
#   `maxUnavailable` rounded down). With one replica that is a surge of 1 and 0 unavailable: the
#   new pod starts, and only when its readiness probe passes does the old one leave the Service.
#
# `strategy` says which one ran here.
#
# > **What you see on local / docker / kubernetes.** On `local` and `docker`, one copy with nothing
# > in front of it is stopped and started again (`docker rm`, then `docker run`): a Recreate, so
# > the requests sent while no echo listens fail. On `kubernetes`, echo is a one-replica Deployment with the default
# > RollingUpdate, a readiness probe and a short `preStop` pause (`manifests/service/echo.yaml`),
# > so there is always a ready copy and the upgrade can fail no request at all. Where the requests
# > come from differs too: on `local` and `docker` they go to the app's URL; on `kubernetes` they
# > are sent from inside the cluster (from the adapter's container) to the Service `echo`
# > (`alone["requests_through"]` says so), because the app's URL there is a port-forward to one
# > pod, which no rollout can keep.
#
# **What to look at:** `failed_requests` and `strategy`. And `generator_restarts`: 0. The
# generator and the adapter are in `untouched`: their process (or container) is the same one.

# %%
# A rollout builds the changed image on this machine: a learner's server on a shared cluster
# (images preloaded on the nodes, no Docker engine beside it) cannot, and says so.
upgrades = app.can("rollout")
if upgrades:
    alone = app.rollout("echo")
    print({k: alone[k] for k in ("strategy", "requests", "failed_requests", "seconds", "build_seconds",
                                 "replaced", "untouched", "generator_restarts")})
else:
    print(f"No rollout here: the {rt.name} runtime has no Docker engine beside it to build the changed echo. "
          "`make bench` on a machine with one records these figures (notebooks/reference/).")

# %% [markdown]
# Now the other strategy, still with **one** copy: `rollout(..., strategy="recreate")` or
# `strategy="rolling"` (on `local` and `docker` a rolling update first puts a front before the one
# copy, so that a second copy can join behind it; on `kubernetes` the Deployment's `spec.strategy`
# is patched before the new image is set).

# %%
if upgrades:
    other = "rolling" if alone["strategy"].startswith("recreate") else "recreate"
    contrast = app.rollout("echo", strategy=other)
    for r in (alone, contrast):
        print(f"1 copy, {r['strategy']:<36} {r['failed_requests']:>4} of {r['requests']} requests failed")

# %% [markdown]
# ## Independent scaling
#
# Three copies of echo, and something in front of them that spreads requests over the copies,
# as a Service does:
#
# * on `local`, the learner's URL now reaches a **front**, one more small process under the
#   app's supervisord (`images/front/front.py`), with the list of copies in a file;
# * on `docker`, every copy joins the network under the alias `echo`, Docker's DNS answers `echo`
#   with the address of each of them, and a front container (the same `front.py`, behind the
#   learner's URL) asks it again every 0.2 s: Docker's own round-robin discovery;
# * on `kubernetes`, it is the Service `echo`. The learner's URL is a port-forward to **one** pod
#   and never reaches the Service, so the requests of the next cell are sent from inside the
#   cluster (from the adapter's container) to the Service's name.
#
# Each answer says which copy gave it (echo sets the header `X-Served-By`).
#
# **What to look at:** every copy answered some requests, and they all serve the *same* numbers:
# there is still one generator, and echo only relays.

# %%
app.scale("echo", 3)
try:
    print(loose.resolve(app, "echo", container="adapter"))
except ac.AppcoupError as e:
    print(e)
shared = loose.spread(app, 30)
print(f"answers from {len(shared.replicas)} copies, same numbers everywhere: {shared.same_numbers}")
shared.table()

# %% [markdown]
# Now the same upgrade with several copies: a **rolling update**. On `local` and `docker`, one
# extra copy of the new version starts first; then each old copy leaves the front, stops and
# comes back new; then the extra one goes. On `kubernetes` the Deployment does the same by its
# RollingUpdate limits. There is always a copy that answers.
#
# **What to look at:** `failed_requests` against the run with one copy above (on `kubernetes`
# both were rolling updates, so both can be 0).

# %%
if upgrades:
    rolled = app.rollout("echo", strategy="rolling")
    plt.figure(figsize=(6, 2.2))
    labels = [f"1 copy, {alone['strategy']}", f"{rolled['replicas']} copies, {rolled['strategy']}"]
    plt.barh(labels, [alone["failed_requests"], rolled["failed_requests"]], color=["tab:red", "tab:green"])
    for i, r in enumerate((alone, rolled)):
        plt.annotate(f"{r['failed_requests']} of {r['requests']} failed, generator restarts: "
                     f"{r['generator_restarts']}", (0, i), xytext=(4, 0), textcoords="offset points", va="center")
    plt.xlabel("failed GET /data during the upgrade")
    plt.title("upgrading echo alone")
    plt.show()
print({name: st["restarts"] for name, st in app.status().items()}, "restarts now")

# %%
app.down()

# %% [markdown]
# ### The contrast: scaling a pod
#
# Scale the `pod` scenario to three copies in the same way. A copy of a pod is a copy of
# *everything* in it: three generators, each writing its own random numbers into its own scratch
# volume.
#
# **What to look at:** three lines that have nothing in common. (On `kubernetes` the `pod`
# scenario is a bare Pod, as in the article: it has no replicas to scale, and says so. A
# Deployment of the same pod would give the three unrelated lines seen on local and docker.)

# %%
separate_data = None
with rt.up("pod", interval=interval, port=0) as pod:
    pod.wait_ready()
    try:
        pod.scale("app", 3)
        ac.watch(pod, min(duration, 1.0))
        separate_data = loose.spread(pod, 30)
    except ac.AppcoupError as e:  # on kubernetes the pod is a bare Pod: it says why it has no copies
        print(e)
fig, axes = plt.subplots(1, 2 if separate_data else 1, figsize=(11 if separate_data else 6, 3), squeeze=False)
shared.plot(axes[0][0], title="service: 3 copies of echo, one generator")
if separate_data:
    print(f"answers from {len(separate_data.replicas)} copies, same numbers everywhere: {separate_data.same_numbers}")
    separate_data.plot(axes[0][1], title="pod: 3 copies of the pod, three generators")
plt.show()
separate_data.table() if separate_data else None

# %% [markdown]
# ## The price: one more hop
#
# In remote mode every `GET /data` is two HTTP requests: a reader → echo, then echo → adapter,
# which reads the file. In a pod, echo reads the file itself. We time `requests` sequential
# requests on each, and each result says where it was taken (`where`).
#
# > **Where these numbers were taken.** On `local` and `docker` the app's URL is echo's port on
# > this machine: the requests go from this notebook's kernel straight to echo, the way in of both
# > couplings, and the difference between the curves is the adapter hop. On `kubernetes` the app's
# > URL is a port-forward through the API server and the kubelet to one echo pod, a path no user
# > of the coupling takes: timed through it, that tunnel would be in both curves. So there, as for
# > the upgrade above, the requests are sent from inside the cluster: in `service` from the
# > adapter's container to the Service `echo` (that curve also crosses the Service, a hop the
# > pod's has not), in `pod` from echo's own container to `localhost`. One more curve, drawn on
# > `kubernetes` only, times the pod through the port-forward: what the tunnel would have added.
#
# **What to look at:** where the service curve lies against the pod's, at the median (p50) and in
# the tail (p99), and where each number was taken. The last line gives the differences. A tail
# also holds whatever else delayed a request: other work on the machine, or on `kubernetes` a
# container's CPU limit (`limits: cpu: 200m` in the manifests), which requests sent back to back
# can reach. Run the cell again to see how much the tail moves.

# %%
with rt.up("service", interval=interval, port=0) as svc, rt.up("pod", interval=interval, port=0) as pod:
    svc.wait_ready()
    pod.wait_ready()
    measured = {"service: echo → adapter → file": loose.timed_gets(svc, requests),
                "pod: echo reads the file": loose.timed_gets(pod, requests)}
    if pod.can("measure_inside"):  # a cluster: what the numbers above were not sent through
        measured["pod, through the port-forward (app.url)"] = loose.timed_gets(pod, max(20, requests // 4), via="url")
loose.plot_latencies(measured, title=f"latency of GET /data on {rt.name}")
plt.show()
for label, t in measured.items():
    print(f"{label:<40} p50 {t.percentile(50) * 1000:7.2f} ms   p99 {t.percentile(99) * 1000:7.2f} ms")
    print(f"    timed {t.where}")
through, direct = measured["service: echo → adapter → file"], measured["pod: echo reads the file"]
print(f"service minus pod: {(through.percentile(50) - direct.percentile(50)) * 1000:+.2f} ms at the median, "
      f"{(through.percentile(99) - direct.percentile(99)) * 1000:+.2f} ms at p99")

# %% [markdown]
# ## What we measured
#
# Through an API and a name, echo can be upgraded and scaled on its own: the generator never
# restarted, the numbers stayed one list, and a rolling update (several copies behind the front
# on `local` and `docker`; any Deployment with a readiness probe on `kubernetes`, even with one
# copy) upgrades without a failed request. The price is a hop on every request, and a new program
# (the adapter) to write, run and keep compatible. Notebook 05 shares data the other way, through
# a volume.
#
# ## Try it
#
# **Predict:** in the `service` scenario, delete the generator's unit entirely and create it
# again (`app.recreate("generator")`), while echo's unit is left alone. Does echo still serve the
# old numbers afterwards? (Think of where the data file lives in this scenario.)
#
# Record `True` or `False` in the `predict` cell **before** the experiment. **The experiment**
# (the cell after it) starts `service`, notes the numbers, recreates the generator's unit only,
# and compares; **check** compares your prediction with what it observed.

# %%
predict("04.1", ...)   # True or False: are the old numbers still served afterwards?

# %%
with rt.up("service", interval=interval, port=0) as svc:
    svc.wait_ready()
    ac.watch(svc, 1.0)
    old = svc.data()
    svc.recreate("generator")
    svc.wait_ready()
    new = svc.data()
kept = new[: len(old)] == old
print("old first numbers:", old[:3], " new:", new[:3], " the old numbers still served:", kept)

# %%
check_service_generator_recreated(kept)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# %%solution
# Solution: the service scenario keeps its data in a scratch volume beside the generator, in the
# generator's unit: recreate that unit and the data goes with it.
solution(check_service_generator_recreated, guess=False, kept=kept)

# %% [markdown]
# ## Play with it
#
# The `service` scenario with its **dashboard**: two units, three containers. Press **kill echo**:
# only echo's restart count moves, and the generator's side never hears of it. Press **kill
# generator**: the generator's own unit restarts it, and echo keeps relaying whatever the adapter
# serves. Where the runtime can, **scale** echo and **upgrade** it, as measured above; otherwise
# hover over the buttons to read why not. Press **down** when you are done.

# %%
# The playground has a name of its own: it can stay up while you go on to the next notebook.
app = rt.up("service", interval=interval, port=0, name=ac.default_name("play-04"))
app.wait_ready()
app.dashboard()
