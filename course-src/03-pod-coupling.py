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
# # 03 · Coupling in a pod: two containers, one network, one volume
#
# **Goal:** run the programs as two containers of one pod, crash one, and measure what restarts and what is lost.  
# **Time:** about 25 minutes.
#
# Can we keep what was good about one image (the programs always side by side, sharing files and
# `localhost`) and lose what was bad (one health for everything, one build for everything)?
# Kubernetes answers with the **pod**: a group of containers scheduled together that share
# one network namespace and can share volumes, while each container keeps its own image, its
# own health and its own restarts.
#
# | | in a pod |
# |---|---|
# | generator | its own image, writes `/tmp/out/data` |
# | echo | its own image, serves the file `/tmp/in/data` at `/data` on port 8000 |
# | shared | a scratch volume (`emptyDir`) mounted at `/tmp/out` and `/tmp/in`; one `localhost` |
#
# On `kubernetes` this is a real pod. On `docker` it is what a pod is under the hood: a tiny
# "pause" container owns the network namespace, and the two containers join it
# (`--network container:...`) and mount one named volume. On `local`, the two processes share a
# directory and the host's `localhost`.

# %% tags=["parameters"]
runtime = "auto"   # "auto", "local", "docker" or "kubernetes"
interval = 0.5     # seconds between two numbers
duration = 6.0     # seconds we watch

# %%
import matplotlib.pyplot as plt

import appcoup_lib as ac
from appcoup_lib import crashes, experiments, lessons, reference
from appcoup_lib.exercises import check_pod_generator_killed, predict, solution
from appcoup_lib.measure import recovery

rt = ac.runtime_for("pod", runtime)
print(f"runtime: {rt.name}")

# %% [markdown]
# ## Start the pod and look at it
#
# **What to look at:** two containers, each running exactly one program. There is no supervisor
# of our own any more: the runtime is the supervisor.

# %%
app = rt.up("pod", interval=interval, port=0)
app.wait_ready()
app.processes()

# %%
# What the two containers of the pod share, drawn from the running app (live in JupyterLab).
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
app.status()

# %% [markdown]
# ## Kill echo again
#
# Same crash as in notebook 02: `SIGKILL` to echo.
#
# **What to look at:** a red gap, then the numbers continue, and **more** of them than before the
# crash: the generator never stopped writing, so nothing was lost while echo was away. Only
# echo's restart count goes up. How long the gap is depends on the runtime (measured below).

# %%
timeline = ac.watch(app, duration, actions={duration / 4: ("kill echo", lambda: app.kill("echo"))})
timeline.plot(title="pod: echo restarts alone, the data keeps flowing")
plt.show()
status = app.status()
for name, st in status.items():
    print(f"{name:<10} running={st['running']!s:<6} restarts={st['restarts']}")
print(f"seconds without data: {timeline.seconds_without_data:.2f}")

# %% [markdown]
# The runtime's timeline shows the same story: one container exited and was started again, the
# other was never touched.

# %%
for event in app.events():
    print(event)

# %% [markdown]
# **On Kubernetes, how does `kill` reach echo?** Nothing here logs into the node, so the kill is
# sent from inside the pod (`kubectl exec`). In its own container echo would be PID 1 of the
# container's PID namespace, and the kernel delivers to a namespace's PID 1 only the signals it
# has installed a handler for, when they are sent from inside that namespace. SIGKILL and SIGSTOP
# can have no handler, so from inside they never arrive; only from an ancestor namespace (the
# node, where the container runtime runs) are they forcibly delivered (`man 7 pid_namespaces`).
#
# So the course's pods set `shareProcessNamespace: true` (see `manifests/pod/pod.yaml`): all
# containers of the pod share one PID namespace whose PID 1 is the pod's *pause* (sandbox)
# process, the programs are ordinary processes in it, and `app.kill` runs `kill -9` through
# `kubectl exec`-style exec. What else it changes:
#
# * each container sees the others' processes (`app.processes()` sorts them by the program each
#   container starts), with everything `/proc` shows about them, such as their command lines and
#   environment variables, and may signal them where the usual permission checks allow (here
#   every container runs as the same user);
# * each container can read the others' file systems through `/proc/<pid>/root`, guarded only by
#   ordinary file permissions;
# * no program is PID 1 any more, so its signal handling no longer depends on being PID 1.
#
# That loss of isolation between the containers is why it is not the default (Kubernetes docs,
# "Share Process Namespace between Containers in a Pod"). `single-image` keeps its own PID
# namespace on purpose: its supervisor *is* PID 1, which is the lesson of notebook 02.
#
# > **What you see on local / docker / kubernetes when you kill echo again and again.** On
# > `local`, supervisord starts echo again at once after each kill (its back-off applies only to
# > a program that dies within a second of starting). On `docker`, the restart policy `always`
# > waits a delay that doubles from 100 ms on each restart (reset once the container has run for
# > a while). On `kubernetes`, the kubelet restarts a container that keeps crashing with an
# > exponential back-off: 10 s, 20 s, 40 s, ... capped at 5 minutes, and reset once the container
# > has run for 10 minutes without trouble (the Pod lifecycle page of the Kubernetes docs; a
# > kubelet can be configured otherwise); while it waits, the container shows `CrashLoopBackOff`.
# > So on a cluster a kill after a quiet while is repaired quickly (the crash table below measures it),
# > but kill echo four times in a row and the later red bands last tens of seconds.
#
# Measured on a fresh pod: echo killed again and again, each time once it has answered for a
# moment (on `kubernetes` three kills, unless `duration` is 10 or more: the fourth waits about 40 s).

# %%
app.down()
kills = 4 if rt.name != "kubernetes" or duration >= 10 else 3
with rt.up("pod", interval=interval, port=0) as trial:
    backoff = experiments.backoff(trial, "echo", kills=kills)
backoff.plot()
plt.show()
backoff.table()

# %% [markdown]
# ## A hang is not an exit
#
# A restart policy reacts to an **exit**. A program can also **hang**: alive, holding its port,
# answering nothing. We stop echo with `SIGSTOP` and watch. Only a **liveness probe** notices: the
# pod's manifest gives echo one on `/healthz` (every 5 s, 3 failures in a row), and the kubelet
# then restarts echo alone. In `single-image` there is no per-program probe (and this one has none
# at all), so nothing notices. On `local` supervisord watches only for exits, and Docker has no
# liveness probes (a `HEALTHCHECK` only reports, notebook 01).
#
# **What to look at:** `restarted` and whether `/data` answered again, for the pod and for the
# single image.

# %%
for label, scenario in (("pod", "pod"), ("single image", "single-image")):
    with rt.up(scenario, interval=interval, port=0) as trial:
        h = experiments.hang(trial, "echo", wait=30 if rt.name == "kubernetes" and scenario == "pod" else duration)
    print(f"{label:<13} watched {h['waited']:g} s: /data answered again: {h['data_back']}"
          + (f" (after {h['back_after']} s)" if h["data_back"] else "")
          + f"; restarted: {', '.join(h['restarted']) or 'nothing'}")

# %% [markdown]
# ## Measured: the same crash, in a pod and in one image
#
# We start each coupling, let it run for a moment, kill echo once, and record what the crash did:
# how long `/data` was dark, **which programs restarted**, whether the generator kept writing,
# and how many numbers were served before and after. (In the single image we use the forwarding
# supervisor, `app-init.sh`: with the naive one echo never comes back at all.)
#
# **What to look at:** the *programs restarted* column. The single image restarted the generator
# too: everything in the container starts over for a crash of one program. How fast each one is
# back depends on the runtime (the next cell).

# %%
couplings = {"pod": ("pod", "naive"), "single image (init)": ("single-image", "init")}
results = []
for label, (scenario, supervisor) in couplings.items():
    with rt.up(scenario, supervisor=supervisor, interval=interval, port=0) as trial:
        trial.wait_ready()
        ac.watch(trial, 1.5)  # let it run for a moment, as a real app would before a crash
        results.append(crashes.crash(trial, "echo", coupling=label))
crashes.table(results)

# %% [markdown]
# How long the dark gap lasts depends on the runtime: as plain processes a restart is almost
# instant; Docker has to notice the exit and start the container again; on Kubernetes the kubelet
# notices the exit, starts the container again, and the port-forward reaches echo once it
# listens (and, between kills, the back-off above grows). These are the times until `/data`
# answers again after killing echo, on Docker (measured here when this notebook runs on Docker,
# otherwise the figures `make bench` recorded, with its date and machine).

# %%
if rt.name == "docker":
    def worst_recovery(scenario, supervisor="naive", rounds=3):
        with rt.up(scenario, supervisor=supervisor, interval=interval, port=0) as trial:
            trial.wait_ready()
            times = []
            for _ in range(rounds):
                ac.watch(trial, 1.5)
                times.append(recovery(trial, "echo", timeout=60))
        return max((t for t in times if t is not None), default=float("nan"))

    dark = {"pod": worst_recovery("pod"), "single image (init)": worst_recovery("single-image", "init")}
    source = "measured here, on docker (worst of 3 kills)"
else:
    ref = reference.load()
    dark = {"pod": ref.seconds("recovery", "pod"), "single image (init)": ref.seconds("recovery_init", "single-image")}
    source = f"reference: {ref.source}"
plt.figure(figsize=(6, 2.5))
plt.barh(list(dark), list(dark.values()), color=["tab:green", "tab:orange"])
plt.xlabel("seconds until /data answers again (docker)")
plt.title(source, fontsize=8)
plt.show()
print(source)
print({k: round(v, 2) for k, v in dark.items()})

# %% [markdown]
# ## Measured: changing one program
#
# With one image per program, a change to echo rebuilds only echo's image and replaces only the
# echo container; the generator keeps running. Compare with the single image in notebook 02.
#
# > **What you see on local / docker / kubernetes.** On `local` and `docker` the echo process or
# > container is replaced alone. On `kubernetes` the `pod` scenario is a **bare Pod** (as in the
# > article), and a Pod's container image is one of the few fields that may be changed in place:
# > the kubelet restarts only that container, in the same pod, with the same `emptyDir`. That is
# > what is measured here.

# %%
if rt.can("replace"):  # Docker replaces the container; Kubernetes changes a pod's image in place
    for scenario in ("single-image", "pod"):
        change = lessons.rebuild_after_change(rt, scenario, program="echo", interval=interval)
        print(scenario, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in change.items()})
else:
    ref = reference.load()
    print(f"Reference figures ({ref.source}):")
    for scenario in ("single-image", "pod"):
        print(f"{scenario:<13} rebuild {ref.seconds('rebuild_one_change', scenario):.2f} s, "
              f"/data dark {ref.seconds('rebuild_no_data', scenario):.2f} s")

# %% [markdown]
# ## What a pod still does not give you
#
# The two containers are still **deployed together**. In the bare Pod above a new image for echo
# could be patched in place, but that is not how pods run at work: they are run by a
# **Deployment**, and any change to a Deployment's pod template (a new image for either program,
# a new variable, a new probe) makes a **new pod** and deletes the old one. Both containers start
# again, and the pod's `emptyDir` is a new, empty one: every number written so far is lost. That
# is the article's point about redeploying the pod: a new version of one program means pulling
# and starting both images again and rebuilding whatever state the pod held. (On `local` and
# `docker` this course replaces one container alone, like the bare Pod.) The two containers also
# scale together, and must fit on one node. Notebooks 04 and 05 loosen the coupling further,
# with a Service and with a persistent volume.
#
# **Measured** on `kubernetes`: the same new echo image, once patched into the bare Pod and once
# set on a one-replica Deployment of the same pod.

# %%
if rt.name == "kubernetes" and rt.can("replace"):
    redeploy = experiments.pod_vs_deployment(rt, "echo", interval=interval)
elif rt.name == "kubernetes":
    redeploy = "(no Docker engine beside this cluster to build the new echo image: not measured here)"
else:
    redeploy = f"(only a cluster has bare Pods and Deployments; on {rt.name} echo is replaced alone, above)"
redeploy

# %% [markdown]
# ## Try it: kill the generator in a pod
#
# **Predict** first: start the pod again and kill the **generator**. Which container restarts,
# and does echo notice?
#
# Record the restarts you expect for each container in the `predict` cell, **before** the
# experiment.
#
# **The experiment** (the cell after it) starts the pod, kills the generator once, waits for its
# restart and reads both containers' restarts. **Check** compares your prediction with what it
# observed; the solution is folded away below that.

# %%
predict("03.1", {"generator": ..., "echo": ...})   # the restarts of each, after one kill of the generator

# %%
with rt.up("pod", interval=interval, port=0) as trial:
    trial.wait_ready()
    ac.watch(trial, 1.5)
    trial.kill("generator")
    trial.wait_until(lambda: trial.status()["generator"]["restarts"] >= 1, timeout=60,
                     what="the generator to restart")
    restarts = {name: st["restarts"] for name, st in trial.status().items()}
print("restarts:", restarts)

# %%
check_pod_generator_killed(restarts)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# %%solution
# Solution: each container of a pod restarts on its own: the generator once, echo not at all.
solution(check_pod_generator_killed, guess={"generator": 1, "echo": 0}, restarts=restarts)

# %% [markdown]
# ## Play with it
#
# The pod with its **dashboard**. Press **kill echo** a few times: each time a red band, echo's
# restart count goes up by one, and the numbers carry on where they were (none lost: the
# generator kept writing into the shared volume). On `local` and `docker` each band stays short;
# on `kubernetes` they grow with every kill in a row (CrashLoopBackOff: 10 s, 20 s, 40 s ...). Press **kill generator**: only the
# generator restarts, and echo never notices. Where the runtime can, **scale** and **upgrade**
# are enabled too; otherwise hover over them to read why not. Press **down** when you are done.

# %%
# The playground has a name of its own: it can stay up while you go on to the next notebook.
app = rt.up("pod", interval=interval, port=0, name=ac.default_name("play-03"))
app.wait_ready()
app.dashboard()
