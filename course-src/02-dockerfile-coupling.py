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
# # 02 · Coupling in one image: a Dockerfile and a supervisor
#
# **Goal:** put both programs in one image behind a supervisor, and measure what that hides and what it costs.  
# **Time:** about 25 minutes.
#
# The tightest coupling puts both programs into **one image** and starts them from one script,
# a home-made *supervisor*. One image, one container, one thing to deploy: it is easy to reason
# about, and both programs are guaranteed to run side by side and share files.
#
# The Dockerfile copies both programs and the supervisor script into the image:

# %% tags=["parameters"]
runtime = "auto"   # "auto", "local", "docker" or "kubernetes"
interval = 0.5     # seconds between two numbers
duration = 6.0     # seconds we watch

# %%
import matplotlib.pyplot as plt

import appcoup_lib as ac
from appcoup_lib import experiments, lessons, reference
from appcoup_lib.exercises import check_single_image_generator_killed, predict, solution
from appcoup_lib.paths import images_dir

rt = ac.runtime_for("single-image", runtime)
print(f"runtime: {rt.name}")
print((images_dir() / "combined" / "Dockerfile").read_text())

# %% [markdown]
# And this is the supervisor, `app.sh`: the generator in the background, echo in the foreground.

# %%
print((images_dir() / "combined" / "app.sh").read_text())

# %% [markdown]
# (The original version of this example used Python 2's `SimpleHTTPServer`, retired since 2020,
# and `:latest` tags. We use Python 3's `http.server` and tag every image with a hash of its
# inputs, so you always know exactly which build runs.)
#
# ## Run it and look inside the container
#
# **What to look at:** one container, `app`, with a whole process tree in it: the supervisor
# shell, the generator shell and its `sleep`, and Python serving HTTP.

# %%
app = rt.up("single-image", interval=interval, port=0)
app.wait_ready()
app.processes()

# %%
# What the two programs share in one container, drawn from the running app (live in JupyterLab).
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
# ## Disadvantage: health is only visible per container
#
# Now echo crashes **inside** the container. From the runtime's point of view, the container is
# its main process, the supervisor, and that one is fine.
#
# **What to look at:** `/data` stops answering (the red area) and never comes back, while the
# status still says the container is running, with zero restarts.

# %%
if not app.answers():
    print("echo is already dead (this cell ran before): run the cell under 'Run it' again first.")
else:
    timeline = ac.watch(app, duration, actions={duration / 4: ("kill echo", lambda: app.kill("echo"))})
    timeline.plot(title="single image, naive supervisor: echo dies, the container lives on")
    plt.show()
print("container status:", app.status()["app"])
print("/data answers:", app.answers())

# %% [markdown]
# The supervisor is still there, waiting on the generator; echo is gone from the process tree.
# A runtime can only restart what it can see fail, and all it sees is one container whose main
# process is alive.
#
# **The `health` field** in the status above (on `docker`) is Docker's health status, set by the
# image's `HEALTHCHECK`. In `images/combined/Dockerfile` that check is `kill -0 1`: it asks only
# whether PID 1, the supervisor, still exists. So it says `healthy` while `/data` is dead: a
# health check is only as good as what it checks. Even an `unhealthy` status would restart
# nothing: Docker only reports it.
#
# > **What you see on local / docker / kubernetes.** On `docker`, `health` is the `HEALTHCHECK`'s
# > verdict. On `kubernetes` there is no `health`: Kubernetes does not use an image's
# > `HEALTHCHECK` (a Docker image-format extension, not part of the OCI image spec), the kubelet
# > runs only the probes in the pod spec; `ready` is the readiness probe's verdict, and this pod
# > has no probe at all (next cell). On `local` nothing checks health at all.

# %%
app.processes()

# %%
app.down()

# %% [markdown]
# On Kubernetes, `manifests/single-image/` gives the pod no probe, on purpose. With a liveness
# probe on echo's `/healthz` the kubelet does notice echo's death, but all it can do about it is
# restart the **whole** container, the healthy generator included.

# %%
if rt.name == "kubernetes":
    print("without a probe:", lessons.health_blind_spot(rt, interval, wait=3))
    print("with a liveness probe:", lessons.health_blind_spot(rt, interval, liveness_probe=True))

# %% [markdown]
# ## A better supervisor, and what it still cannot do
#
# The naive `app.sh` is one end of a range. Real images use one of these instead:
#
# * a minimal **init**: [`tini`](https://github.com/krallin/tini), or `docker run --init`, which
#   puts Docker's bundled `tini` in front of your command as PID 1. It forwards signals to its
#   child and reaps zombies (exited children nobody waited for); it restarts nothing, and when
#   its child exits, it exits too.
# * a **restarting supervisor**: `supervisord`, or `s6` (in containers usually as `s6-overlay`).
#   It starts several programs, restarts each one when it dies, and forwards signals on a stop.
#
# `app-init.sh` is a small init of the first kind, written for this course: it **forwards**
# SIGTERM to both programs, **reaps** whatever exits, and when either program dies it stops the
# other and exits with an error, so the runtime sees the failure and restarts the container.
#
# With any supervisor, the programs stay invisible to the orchestrator, which sees one container.
# It cannot **see** which program failed, **probe** each one (one liveness probe per container),
# **restart** one alone (unless the supervisor does it, unseen, with nothing in the runtime's
# restart count or events), **log** them apart (one output stream, both programs mixed), or
# **upgrade** one without shipping and restarting the other. That is what notebook 03 gets back.

# %%
print((images_dir() / "combined" / "app-init.sh").read_text())

# %% [markdown]
# **What to look at:** this time `/data` comes back, but the restart count belongs to the whole
# container: the generator was restarted too, although nothing was wrong with it. You can only
# ever restart the **entire** app.

# %%
with rt.up("single-image", supervisor="init", interval=interval, port=0) as app:
    app.wait_ready()
    timeline = ac.watch(app, duration, actions={duration / 4: ("kill echo", lambda: app.kill("echo"))})
    status = app.status()
    events = app.events()
timeline.plot(title="single image, forwarding supervisor: the whole container restarts")
plt.show()
print("container status:", status["app"])
for e in events:
    print(e)

# %% [markdown]
# ### A restarting supervisor
#
# `app-restart.sh` is a restarting supervisor of the second kind, a few lines of `sh` instead of
# supervisord or s6: one loop per program starts it again whenever it exits.

# %%
print((images_dir() / "combined" / "app-restart.sh").read_text())

# %% [markdown]
# **What to look at:** echo is back, and the runtime saw nothing: one container, zero restarts; the
# restart is only a line in the supervisor's output, mixed into the one log of both programs.

# %%
restarting = experiments.supervised(rt, "restarting", interval=interval)
print(f"killed echo answered again after {restarting['back_after']} s")
print(f"what {rt.name} sees: containers {restarting['containers']}, restarts {restarting['container_restarts']}")
print("the supervisor's own word, in the container's one log:", *restarting["supervisor_says"])

# %% [markdown]
# ## Disadvantage: signals, and the time a stop takes
#
# When Docker or Kubernetes stops a container, it sends SIGTERM to the container's main process,
# PID 1 of its PID namespace, and waits a grace period (10 s by default with `docker stop`) before
# sending SIGKILL. The kernel delivers a signal to a namespace's PID 1 only if PID 1 has installed
# a handler for it; only SIGKILL and SIGSTOP sent from outside the namespace get through
# regardless (`man 7 pid_namespaces`). The naive `app.sh` installs no handler: SIGTERM is dropped,
# every stop waits out the whole grace period, and the programs never get a chance to shut down
# cleanly. This needs real containers (as local
# processes nothing is PID 1), so we measure it on Docker, or on Kubernetes, where the kubelet
# does the same when a pod is deleted (its grace period is `terminationGracePeriodSeconds`).
# Without either here, you see the figures `make bench` measured on a machine that had one.

# %%
if rt.can("stop"):
    stops = {s: lessons.stop_time(s, rt) for s in ("naive", "init")}
    source = f"measured here, on {rt.name}"
else:
    ref = reference.load()
    stops = {"naive": ref.seconds("stop_naive", "single-image"), "init": ref.seconds("stop_forwarding", "single-image")}
    source = f"reference: {ref.source}"
plt.figure(figsize=(6, 2.5))
plt.barh(["app.sh (naive)", "app-init.sh (forwards)"], [stops["naive"], stops["init"]], color=["tab:red", "tab:green"])
plt.xlabel("seconds to stop (`docker stop` / pod deletion)")
plt.title(source, fontsize=8)
plt.show()
print(source)
print({k: round(v, 2) for k, v in stops.items()})

# %% [markdown]
# ## Disadvantage: one change rebuilds and restarts everything
#
# Change one line of echo, and the combined image has to be rebuilt and the **whole** container
# replaced: the generator stops too, and `/data` has a gap. Notebook 03 measures the same change
# with one image per program.

# %%
if rt.can("replace"):
    change = lessons.rebuild_after_change(rt, "single-image", program="echo", interval=interval)
    for key, value in change.items():
        print(f"{key:<22} {value}")
else:
    ref = reference.load()
    print(f"Reference figures ({ref.source}):")
    print(f"rebuild after one changed line of echo: {ref.seconds('rebuild_one_change', 'single-image'):.2f} s")
    print(f"/data dark while the one container is replaced: {ref.seconds('rebuild_no_data', 'single-image'):.2f} s")

# %% [markdown]
# ## And one more, without a measurement
#
# You can only build such an image if you have **all the programs as files**. If one part is only
# available as an image from someone else, you cannot merge it into yours.
#
# ## Why this matters
#
# One image keeps things simple, but it hides the programs from the runtime: failures inside go
# unnoticed (or restart everything, or are restarted by a supervisor the runtime cannot see),
# stops are slow unless PID 1 handles signals (`tini`, `--init`, or a careful script), and every
# change ships the whole application again.
#
# ## Try it: kill the generator behind the forwarding supervisor
#
# **Predict** first: start `single-image` with `supervisor="init"` and kill the **generator**
# (not echo). How many restarts does the container report a few seconds later? Does `/data`
# answer again?
#
# Record your prediction in the `predict` cell (replace each `...`) **before** the experiment.
#
# **The experiment** (the cell after it) starts `single-image` with `supervisor="init"`, kills
# the generator, waits (up to a minute) for the container to be restarted, and reads the
# container's restarts and whether `/data` answers. **Check** compares your prediction with what
# it observed; the solution is folded away below that.

# %%
predict("02.1", {"restarts": ..., "data_answers": ...})   # a number, and True or False

# %%
with rt.up("single-image", supervisor="init", interval=interval, port=0) as trial:
    trial.wait_ready()
    trial.kill("generator")
    trial.wait_until(lambda: trial.status()["app"]["restarts"] >= 1, timeout=60, what="the container to restart")
    trial.wait_ready()
    restarts, data_answers = trial.status()["app"]["restarts"], trial.answers()
print(f"the container's restarts: {restarts}; /data answers: {data_answers}")

# %%
check_single_image_generator_killed(restarts, data_answers)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# %%solution
# Solution: the forwarding supervisor exits when the generator dies, so the runtime restarts the
# whole container (one restart, echo's too), and /data answers again once both are back.
solution(check_single_image_generator_killed, guess={"restarts": 1, "data_answers": True},
         restarts=restarts, data_answers=data_answers)

# %% [markdown]
# ## Play with it
#
# The naive single image again, now with its **dashboard**. Press **kill echo** and compare the
# two views: the plot goes red (nothing answers) while the table keeps saying the container is
# *running*, with zero restarts; only "ready" (does `/data` answer?) tells the truth.
# (With the forwarding supervisor on `kubernetes`, kill echo several times in a row and the
# container's restarts slow down: the CrashLoopBackOff of notebook 03.) Press
# **kill generator** on a fresh start and watch the numbers freeze. To see the forwarding
# supervisor instead, add `supervisor="init"` to `rt.up(...)` and run the cell again. Press
# **down** when you are done.

# %%
# The playground has a name of its own: it can stay up while you go on to the next notebook.
app = rt.up("single-image", interval=interval, port=0, name=ac.default_name("play-02"))
app.wait_ready()
app.dashboard()
