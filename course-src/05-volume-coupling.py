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
# # 05 · Loose coupling through a persistent volume
#
# **Goal:** let two separately scheduled units share data through a persistent volume; show that the data outlives both, and measure bulk transfer through the volume against the HTTP adapter.  
# **Time:** about 25 minutes.
#
# The adapter of notebook 04 is a program to write and a hop on every request. When two programs
# exchange *files* — many, or large — there is a simpler coupling: a **persistent volume** that
# both mount. Each unit is restarted and replaced on its own; only the storage is shared (and,
# on Kubernetes, the node that storage is attached to: see the end of this notebook).
#
# | unit | container | mounts |
# |---|---|---|
# | `generator` | generator | the volume `data` at `/tmp/out` |
# | `echo` | echo (file mode) | the same volume at `/tmp/in` |
#
# Nothing *discovers* the volume: both sides are told its name, agreed **out of band** — by whoever
# writes the two deployments. On `kubernetes` that name is a PersistentVolumeClaim, written into
# both manifests; on `docker` a named volume in both `docker run -v`; on `local` one directory.

# %% tags=["parameters"]
runtime = "auto"   # "auto", "local", "docker" or "kubernetes"
interval = 0.5     # seconds between two numbers
duration = 6.0     # seconds we watch
megabytes = 2.0    # bulk data moved generator → echo, per way of moving it

# %%
import re
from pathlib import Path

import matplotlib.pyplot as plt

import appcoup_lib as ac
from appcoup_lib import loose
from appcoup_lib.exercises import check_volume_replicas_share, predict, solution

rt = ac.runtime_for("volume", runtime)
print(f"runtime: {rt.name}")

# %% [markdown]
# ## Where the name is agreed
#
# In the Kubernetes manifests of this course, the claim's name appears in three files: where it is
# made, and in each of the two Deployments that mount it. Rename it in one and that pod never
# starts. Nobody checks that they agree but you.

# %%
manifests = Path("..") / "manifests" / "volume"   # beside notebooks/ in the course's folder
for path in sorted(manifests.glob("*.yaml")):
    text = path.read_text()
    kind = re.search(r"^kind:\s*(\S+)", text, re.MULTILINE)
    for line in text.splitlines():
        if re.match(r"^\s*claimName:", line) or (kind and kind[1] == "PersistentVolumeClaim"
                                                  and re.match(r"^  name:", line)):
            print(f"{path.name:<16} {kind[1] if kind else '':<22} {line.strip()}")
if not manifests.is_dir():
    print("(the manifests/ folder is not beside the notebooks here)")

# %% [markdown]
# And on this runtime: which container mounts what.

# %%
app = rt.up("volume", interval=interval, port=0)
app.wait_ready()
app.volumes()

# %%
# Two units, one persistent volume between them: drawn from the running app (live in JupyterLab).
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

# %% [markdown]
# ## The data outlives both units
#
# We delete **both** units — for a moment, no generator and no echo exist anywhere, only the
# volume — and create them again. (`app.recreate(...)` is, on `kubernetes`, scaling each
# Deployment to 0 and back, `kubectl scale --replicas=0` then `--replicas=1`, so that for a moment
# no pod of either exists; on `docker`, `docker rm -f` then `docker run`; on `local`, stopping the
# processes and starting new ones.)
#
# **What to look at:** the numbers after start with the numbers before: the new generator appends
# to the same file, the new echo serves it.

# %%
ac.watch(app, min(duration, 1.5))
before = app.data()
took = app.recreate("generator", "echo")
app.wait_ready()
after = app.data()
print(f"recreated {took['units']} in {took['seconds']:.2f} s")
print(f"before: {len(before)} numbers, first {before[:4]}")
print(f"after:  {len(after)} numbers, first {after[:4]}")
print("the old numbers are still there:", after[: len(before)] == before)

# %%
app.down()

# %% [markdown]
# ### The contrast: a pod's scratch volume
#
# The pod of notebook 03 shares a *scratch* volume (`emptyDir`): it belongs to the pod. Recreate
# the pod and the volume is a new, empty one.
#
# **What to look at:** the first numbers differ; the count starts again from one.

# %%
with rt.up("pod", interval=interval, port=0) as pod:
    pod.wait_ready()
    ac.watch(pod, min(duration, 1.5))
    pod_before = pod.data()
    pod.recreate("app")
    pod.wait_ready()
    pod_after = pod.data()
print(f"before: {len(pod_before)} numbers, first {pod_before[:4]}")
print(f"after:  {len(pod_after)} numbers, first {pod_after[:4]}")
print("the old numbers are still there:", pod_after[: len(pod_before)] == pod_before)

fig, ax = plt.subplots(figsize=(6, 2.4))
ax.barh(["volume: persistent", "pod: scratch"], [len(before), len(pod_before)], color="lightgray",
        label="numbers before")
ax.barh(["volume: persistent", "pod: scratch"], [min(len(after), len(before)) if after[: len(before)] == before else 0,
                                                 len(pod_before) if pod_after[: len(pod_before)] == pod_before else 0],
        color="tab:green", label="of those, still served after recreating")
ax.set_xlabel("numbers")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Bulk data: the volume against the adapter
#
# Append `megabytes` MB to the generator's data file, from the generator's side, then read all of
# it at `/data`. In `volume`, echo reads the file from the shared volume; in `service`, echo fetches
# it from the adapter over HTTP on every request. Best of three reads each; each row says where its
# reads were made (`where`).
#
# > **Where these numbers were taken.** On `local` and `docker` the reader is this notebook's
# > kernel at the app's URL, echo's port on this machine: the way in of both couplings. On
# > `kubernetes` the app's URL is a port-forward (API server, kubelet, pod) to one echo pod, and
# > every byte read there would cross that tunnel in both rows, as in notebook 04. So there the
# > reader runs inside the cluster, as in 04: in `service` from the adapter's container to the
# > Service `echo` (the bytes also cross that Service), in `volume`, which has no Service in front
# > of echo, from echo's own container to `localhost`.
#
# **What to look at:** how many MB per second each way moves; the volume has no program in the way.

# %%
moved = {}
for scenario in ("volume", "service"):
    with rt.up(scenario, interval=interval, port=0) as a:
        a.wait_ready()
        try:
            moved[scenario] = loose.bulk(a, megabytes)
        except ac.AppcoupError as e:
            print(f"{scenario}: {e}")
for scenario, m in moved.items():
    print(f"{scenario:<8} {m['bytes'] / 1e6:6.2f} MB in {m['seconds']:.3f} s = {m['mb_per_s']:8.1f} MB/s")
    print(f"         read {m['where']}")
if moved:
    plt.figure(figsize=(6, 2))
    plt.barh([f"{s} ({'volume' if s == 'volume' else 'HTTP adapter'})" for s in moved],
             [m["mb_per_s"] for m in moved.values()], color=["tab:green", "tab:blue"][: len(moved)])
    plt.xlabel("MB/s, generator's file → reader of /data")
    plt.show()

# %% [markdown]
# ## What we measured
#
# A persistent volume couples two units by their data only: either can be deleted, rescheduled
# or upgraded while the data stays, and bulk data moves without a program in the way. What it
# does not give you is discovery or a contract: the name is agreed by hand, both sides must agree
# on the file's format, and two writers need their own rules. On Kubernetes the claim also
# constrains placement: `ReadWriteOnce` means mounted read-write by one *node* (any number of pods
# on it), so the course's echo Deployment carries a pod affinity that puts it on the generator's
# node (`manifests/volume/echo.yaml`); pods on different nodes would need storage offering
# `ReadWriteMany`.
#
# ## Try it
#
# **Predict:** in the `volume` scenario, scale echo to 2 copies: two echo units mounting the one
# volume the one generator writes to. Do both copies serve the same numbers? (Compare notebook
# 04, where a copy of a *pod* was a copy of the generator too.)
#
# Record `True` or `False` in the `predict` cell **before** the experiment. **The experiment**
# (the cell after it) starts `volume`, scales echo to 2 and asks `/data` a few times, noting
# which copy answered each request; **check** compares your prediction with what it observed.

# %%
predict("05.1", ...)   # True or False: do both copies serve the same numbers?

# %%
with rt.up("volume", interval=interval, port=0) as vol:
    vol.wait_ready()
    vol.scale("echo", 2)
    seen = loose.spread(vol, 10)
same_numbers = seen.same_numbers
print(f"answers from {len(seen.replicas)} copies, the same numbers everywhere: {same_numbers}")
seen.table()

# %%
check_volume_replicas_share(same_numbers)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# %%solution
# Solution: two copies of echo mount one volume, written by one generator: the same numbers.
solution(check_volume_replicas_share, guess=True, same_numbers=same_numbers)

# %% [markdown]
# ## Play with it
#
# The `volume` scenario with its **dashboard**: two units that share only the volume. Press
# **kill generator** and then **kill echo**: each restarts in its own unit, and the numbers carry
# on from where they were, because the file lives on the volume, not in either unit. Where the
# runtime can, **scale** echo (every copy mounts the one volume) and **upgrade** it; otherwise
# hover over the buttons to read why not. Press **down** when you are done.

# %%
# The playground has a name of its own: it can stay up while you go on to the next notebook.
app = rt.up("volume", interval=interval, port=0, name=ac.default_name("play-05"))
app.wait_ready()
app.dashboard()
