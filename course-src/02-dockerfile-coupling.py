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

# %% [markdown]
# ## Disadvantage: health is only visible per container
#
# Now echo crashes **inside** the container. From the runtime's point of view, the container is
# its main process, the supervisor, and that one is fine.
#
# **What to look at:** `/data` stops answering (the red area) and never comes back, while the
# status still says the container is running, with zero restarts.

# %%
timeline = ac.watch(app, duration, actions={duration / 4: ("kill echo", lambda: app.kill("echo"))})
timeline.plot(title="single image, naive supervisor: echo dies, the container lives on")
plt.show()
print("container status:", app.status()["app"])
print("/data answers:", app.answers())

# %% [markdown]
# The supervisor is still there, waiting on the generator; echo is gone from the process tree.
# A runtime can only restart what it can see fail, and all it sees is one healthy container.

# %%
app.processes()

# %%
app.down()

# %% [markdown]
# ## A better supervisor, and what it still cannot do
#
# `app-init.sh` behaves more like an init process: it **forwards** SIGTERM to both programs,
# **reaps** whatever exits, and when either program dies it stops the other and exits with an
# error, so the runtime sees the failure and restarts the container.

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
# ## Disadvantage: signals, and the time a stop takes
#
# When Docker or Kubernetes stops a container, it sends SIGTERM to PID 1 and waits a grace period
# (10 s with `docker stop`) before killing it. A shell running as PID 1 **ignores** SIGTERM unless
# it handles it, and the naive `app.sh` does not: every stop waits out the whole grace period, and
# the programs never get a chance to shut down cleanly. This needs real containers (as local
# processes nothing is PID 1), so we measure it on Docker.

# %%
if rt.name == "docker":
    from appcoup_lib import lessons

    stops = {s: lessons.stop_time(s, rt) for s in ("naive", "init")}
    plt.figure(figsize=(5, 2.5))
    plt.barh(["app.sh (naive)", "app-init.sh (forwards)"], [stops["naive"], stops["init"]], color=["tab:red", "tab:green"])
    plt.xlabel("seconds for `docker stop`")
    plt.show()
    print({k: round(v, 2) for k, v in stops.items()})
else:
    print(f"The stop-time measurement needs the docker runtime (this notebook runs on {rt.name}); "
          "run it with runtime='docker' to see it.")

# %% [markdown]
# ## Disadvantage: one change rebuilds and restarts everything
#
# Change one line of echo, and the combined image has to be rebuilt and the **whole** container
# replaced: the generator stops too, and `/data` has a gap. Notebook 03 measures the same change
# with one image per program.

# %%
if rt.name == "docker":
    change = lessons.rebuild_after_change(rt, "single-image", program="echo", interval=interval)
    for key, value in change.items():
        print(f"{key:<22} {value}")
else:
    print(f"The rebuild measurement needs the docker runtime (this notebook runs on {rt.name}); "
          "run it with runtime='docker' to see it.")

# %% [markdown]
# ## And one more, without a measurement
#
# You can only build such an image if you have **all the programs as files**. If one part is only
# available as an image from someone else, you cannot merge it into yours.
#
# ## Why this matters
#
# One image keeps things simple, but it hides the programs from the runtime: failures inside go
# unnoticed (or restart everything), stops are slow unless you write a careful supervisor, and
# every change ships the whole application again.
#
# ## Try it
#
# Start `single-image` with `supervisor="init"` and kill the **generator**. Does `/data` keep
# answering? How many restarts does the container report? Check with
# `app.status()["app"]["restarts"]` after a few seconds.

# %%
with rt.up("single-image", supervisor="init", interval=interval, port=0) as app:
    app.wait_ready()
    app.kill("generator")
    ac.watch(app, 2.0)
    print("restarts of the container:", app.status()["app"]["restarts"], "| /data answers:", app.answers())
