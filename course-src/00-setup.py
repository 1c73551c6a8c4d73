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
# **Goal:** check what can run here, pick a runtime, meet the two programs and watch them work together.  
# **Time:** about 10 minutes.
#
# This course is about **coupling**: how tightly the programs of one application are tied
# together when they run in containers, and what each choice costs. We use one small application
# the whole way through:
#
# * **generator** appends a random number (0 to 32767) to a file called `data`, every
#   `interval` seconds;
# * **echo** serves the directory that file is in over HTTP, so `GET /data` returns the numbers,
#   one per line.
#
# The two only work *together*: echo needs the file the generator writes, and someone needs to
# reach echo's port. Every notebook couples them a different way and **measures** what that means.
#
# Everything runs for real on a *runtime*:
#
# | runtime | what a "container" is | what you need |
# |---|---|---|
# | `local` | a plain process, supervised by supervisord | nothing but Python (works on Binder) |
# | `docker` | a Docker container | a running Docker engine |
# | `kubernetes` | a container in a pod | a cluster (kind, minikube, k3d, Docker Desktop, OpenShift ...) |
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
# Notice two details that matter later: it **traps SIGTERM** (a program that is PID 1 in a
# container gets no default signal handling) and it sleeps in the background so a signal does not
# have to wait for the sleep to end.
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
# count; press **kill generator** and watch the numbers stop and start again. The panel updates
# by itself while no cell is running, so there is nothing to re-run. Press **down** when you are
# done (closing the notebook's kernel stops it too). Notebook 01 starts where this one ends.

# %%
# The playground has a name of its own: it can stay up while you go on to the next notebook.
play = ac.runtime_for("pod", rt.name).up("pod", interval=interval, port=0, name=ac.default_name("play-00"))
play.wait_ready()
play.dashboard()
