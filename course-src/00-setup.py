# ---
# jupyter:
#   jupytext:
#     formats: notebooks///ipynb,course-src///py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Setting up: two programs, and where they can run
#
# **Goal:** learn the six words the course uses, check what can run here, pick a runtime, meet the two programs and watch them work together.  
# **Time:** about 15 minutes.
#
# This course is about **coupling**: how tightly the programs of one application are tied
# together when they run in containers, and what each choice costs. We use one small application
# the whole way through:
#
# * **generator** appends a random number (0 to 32767) to a file called `data`, every
#   `interval` seconds;
# * **echo** serves that one file over HTTP at `/data` (and a health check at `/healthz`;
#   nothing else of its directory: no listing, no other file), so `GET /data` returns the
#   numbers, one per line.
#
# The two only work *together*: echo needs the file the generator writes, and someone needs to
# reach echo's port. Every notebook couples them a different way and **measures** what that means.

# %% [markdown]
# ## A five-minute primer: six words
#
# Nothing is started yet. These are the words every later notebook uses, in plain terms, and
# what each one is for our two programs.
#
# | word | in one sentence | for generator and echo |
# |---|---|---|
# | **image** | a packaged, read-only file tree holding a program and everything it needs, plus the command that starts it. | `images/generator/` and `images/echo/` each build one; notebook 02 also builds one image holding both. |
# | **container** | a program started from an image, which the kernel fences off (its own view of processes, network and files) but which is still an ordinary process of the host's kernel. | one container per program, or one container for both (notebook 02). |
# | **pod** | Kubernetes' smallest unit: one or more containers always placed on the same machine, sharing one network (one `localhost`) and, if asked, volumes. | notebook 03 puts generator and echo into one pod. |
# | **volume** | a directory mounted into a container from outside it, so that data can be shared between containers or outlive one. | the place where the generator writes `data` and echo reads it (notebooks 01, 03, 05). |
# | **Service** | a stable name and address in Kubernetes that forwards network traffic to whichever pods currently carry the labels it selects. | how echo finds the generator's side by name once they no longer share a file (notebook 04). |
# | **cluster** | a group of machines (nodes) that Kubernetes runs as one: you declare what should run, and it places pods, restarts containers and replaces pods to keep it so. | notebook 06 puts generator and echo into two different clusters. |
#
# So the course's question, in these words: do generator and echo share a **container**, a
# **pod**, a **volume**, only a **Service** name, or not even a **cluster**, and what does each
# choice cost when one of them crashes, is upgraded or is scaled?
#
# Everything runs for real on a *runtime*:
#
# | runtime | what a "container" is | what you need |
# |---|---|---|
# | `local` | a plain process, supervised by supervisord | nothing but Python (works on Binder) |
# | `docker` | a Docker container | a running Docker engine |
# | `kubernetes` | a container in a pod | a cluster (kind, minikube, k3d, Docker Desktop, OpenShift ...) |
#
# > **What you see on local / docker / kubernetes.** On `local` there is no image and no
# > isolation: each "container" is a process started from the files in `images/`, so a local
# > "pod" shares nothing but a directory and the host's `localhost`. On `docker` the images are
# > built and the containers are real. On `kubernetes` the pods, volumes and Services are real
# > objects of your cluster, which you can inspect with `kubectl`.
#
# > **Podman instead of Docker?** Point `DOCKER_HOST` at its socket
# > (`unix:///run/podman/podman.sock` as root, `unix://$XDG_RUNTIME_DIR/podman/podman.sock`
# > rootless) and the `docker` runtime runs unchanged; `ac.doctor()` says which engine answered.
# > A rootless Podman cannot publish a port below 1024, so keep `port=0` as these notebooks do.
# > Podman also has pods of its own (`podman pod create`): an infra container holds the network
# > namespace and the others join it, which is the pause container the `docker` runtime builds by
# > hand with `--network container:`, and what Kubernetes does for every pod.
#
# The cell below holds the notebook's **parameters**. `runtime="auto"` picks the richest runtime
# that works on this machine; set it to `"local"`, `"docker"` or `"kubernetes"` to choose.

# %% tags=["parameters"]
runtime = "auto"   # "auto", "local", "docker" or "kubernetes"
interval = 0.5     # seconds between two numbers of the generator
duration = 5.0     # seconds we watch the application in the demo cells

# %%
import matplotlib.pyplot as plt

import appcoup_lib as ac
from appcoup_lib.exercises import check_auto_runtime, predict, solution
from appcoup_lib.paths import images_dir
from appcoup_lib.runtimes import AUTO_ORDER

# %% [markdown]
# ## The six words in one picture
#
# Still nothing runs: this is the `pod` scenario as a Kubernetes **cluster** would run it, drawn
# from the course's own manifests. Find each word in it: the **pod** (the box `pod app`) holds two
# **containers**, each started from its own **image** (named under the container's name); both
# mount one **volume** (`data`, a scratch `emptyDir` that lives and dies with the pod); the bands
# under the boxes say which namespaces the two share (one network: one `localhost`). The arrow at
# the top is how you reach echo from outside the cluster (a port-forward here); a **Service**
# gives a stable name inside it (notebook 04). Each later notebook opens with its own picture, and
# `app.diagram()` draws the same picture from a running app, live.

# %%
ac.guide.picture("pod", "kubernetes")

# %% [markdown]
# ## Try it: what can run here, and what will `auto` pick?
#
# Every exercise in this course goes the same way:
#
# 1. **Predict**, before anything is measured, and record it: replace the `...` in the
#    `predict(...)` cell with your guess and run it. (Left at `...`, nothing is recorded; the
#    notebook still runs.)
# 2. **Run the experiment**: the cells after it measure what really happens, here and now.
# 3. **Check**: the check cell compares your prediction with what this run observed, and says
#    why.
# 4. The **solution** is folded away under the check, and does not run on "Run All": click the
#    collapsed cell (or its "⋯") to read it, and run it with `%%solution --run` on its first line
#    to see it work.
#
# **Predict:** `ac.runtime("auto")` picks a runtime for you. Think about this machine: is a Docker
# engine running here? Is a Kubernetes cluster configured? Which runtime will `auto` pick, and
# why? Put one name, `"local"`, `"docker"` or `"kubernetes"`, into the cell below and run it.
#
# **The experiment** comes next: `ac.doctor()` checks each runtime and, for one that is not
# usable, names the **one step** that would make it usable (nothing here is required: `local`
# always works); then we ask `auto` which runtime it picks.

# %%
predict("00.1", ...)   # your guess: "local", "docker" or "kubernetes"

# %%
report = ac.doctor()
report

# %%
picked = ac.runtime("auto").name
print(f"runtime('auto') picked {picked}; usable here: {', '.join(report.usable)}")

# %%
check_auto_runtime(picked, report.usable)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# %%solution
# Solution: auto takes the first usable runtime in its order (the richest one), so the right
# prediction is that runtime, read from the doctor's table.
print("auto's order:", " > ".join(AUTO_ORDER))
richest = next((r for r in AUTO_ORDER if r in report.usable), "local")
solution(check_auto_runtime, guess=richest, picked=picked, usable=report.usable)

# %% [markdown]
# This notebook's own runtime is the `runtime` parameter (`"auto"` unless you changed it):

# %%
rt = ac.runtime(runtime)
print(f"runtime: {rt.name}  ({rt.description})")

# %% [markdown]
# ## The two programs
#
# Both programs live in `images/` in this repository. The very same files run as local processes
# and inside the container images: there is one source of truth. Here is the generator, a POSIX
# shell script:

# %%
print((images_dir() / "generator" / "generator.sh").read_text())

# %% [markdown]
# Notice two details that matter later: it **traps SIGTERM** (a container's main program is
# PID 1 of its own PID namespace, and the kernel does not deliver to PID 1 a signal it has no
# handler for, SIGKILL from outside excepted, so without the trap `docker stop` or a pod's
# deletion would have to wait for the kill at the end of the grace period; notebook 02 measures
# it) and it sleeps in the background so a signal does not have to wait for the sleep to end.
#
# ## The map of the course
#
# A **scenario** is one way of coupling the two programs. The same scenario runs on each runtime;
# where one cannot run (marked `n/a`), the library says why when you try.

# %%
ac.matrix()

# %% [markdown]
# ## A first run
#
# Let's start the `pod` scenario (the two programs side by side, sharing a directory) and watch
# `/data` for a few seconds. `port=0` asks for any free port, so nothing on your machine gets in
# the way. The `with` block guarantees that everything is stopped and removed at the end, even if
# a cell fails.
#
# **What to look at:** the line climbs by one number every `interval` seconds. That is the
# generator writing and echo serving, together.

# %%
with ac.runtime_for("pod", rt.name).up("pod", interval=interval, port=0) as app:
    app.wait_ready()
    print(f"serving at {app.url}/data")
    timeline = ac.watch(app, duration)
    first = app.data()[:5]

timeline.plot(title="the pod scenario: numbers served over time")
plt.show()
print("the first numbers:", first)

# %% [markdown]
# Every `with` block above took its app down again. `ac.running()` lists what appcoup runs right
# now on every runtime (`appcoup status` in a terminal). If an interrupted cell ever leaves something
# behind, `ac.clean()` (or `appcoup clean`) removes it all.

# %%
ac.running()

# %% [markdown]
# ## Play with it
#
# The measured part is over; now it is yours. The cell below starts the `pod` scenario again
# and shows its **dashboard**: the numbers `/data` serves (newest on the right), each container
# with its state, readiness and restarts, buttons to crash a program, and the runtime's timeline.
#
# Things to try: press **kill echo** and watch the red band (no answer) and echo's restart
# count; press **kill generator** and watch the numbers stop and start again. (Kill the same
# program several times in a row on `kubernetes` and the red bands grow: the kubelet waits
# longer before each new restart, notebook 03 says how long.) The panel updates
# by itself while no cell is running, so there is nothing to re-run. Press **down** when you are
# done (closing the notebook's kernel stops it too). Notebook 01 starts where this one ends.

# %%
# The playground has a name of its own: it can stay up while you go on to the next notebook.
play = ac.runtime_for("pod", rt.name).up("pod", interval=interval, port=0, name=ac.default_name("play-00"))
play.wait_ready()
play.dashboard()
