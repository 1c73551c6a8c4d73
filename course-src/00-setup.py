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
# The cell below holds the notebook's **parameters**. `runtime="auto"` picks the richest runtime
# that works on this machine; set it to `"local"`, `"docker"` or `"kubernetes"` to choose.

# %% tags=["parameters"]
runtime = "auto"   # "auto", "local", "docker" or "kubernetes"
interval = 0.5     # seconds between two numbers of the generator
duration = 5.0     # seconds we watch the application in the demo cells

# %%
import matplotlib.pyplot as plt

import appcoup_lib as ac
from appcoup_lib.exercises import check_federation_runtimes, solution
from appcoup_lib.paths import images_dir

# %% [markdown]
# ## What can run here?
#
# `ac.doctor()` checks each runtime. For a runtime that is not usable, it names the **one step**
# that would make it usable. Nothing here is required: `local` always works.

# %%
report = ac.doctor()
report

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
# ## Try it: where can `federation` run?
#
# Every exercise in this course goes the same way:
#
# 1. **Predict.** Which runtimes can run the `federation` scenario (two clusters joined by an
#    exposed endpoint)? Why not `local`?
# 2. **Try** it in the empty cell below: `ac.scenario("federation").runtimes` lists them, and
#    `ac.runtime("local").up("federation")` fails with an error that says what failed, why, and
#    what to do. Read it.
# 3. **Check**: replace the `...` with your answer and run the check cell.
#
# The solution is folded away under the check: click the collapsed cell (or its "⋯") to open it.

# %%


# %%
answer = ...   # your answer: a list of runtime names, e.g. ["local", "docker"]
check_federation_runtimes(answer)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution: ask the scenario, and see what local says when asked anyway.
error = ""
try:
    ac.runtime("local").up("federation")
except ac.AppcoupError as e:
    error = str(e)
solution(check_federation_runtimes, answer=ac.scenario("federation").runtimes, local_says=error)

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
