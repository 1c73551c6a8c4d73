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
# # 01 · Two separate runs
#
# **Goal:** couple two programs by a shared directory and a published port, break it, and see that nothing repairs it.  
# **Time:** about 15 minutes.
#
# The loosest way to start two programs is to start them **one by one** and let them find each
# other by convention. With Docker, that is two `docker run` commands:
#
# ```sh
# mkdir -p shared
# docker run -d --name generator -v "$PWD/shared":/tmp/out -w /tmp/out appcoup/generator:<tag>
# docker run -d --name echo -p 8000:8000 -v "$PWD/shared":/tmp/in -w /tmp/in appcoup/echo:<tag>
# curl http://localhost:8000/data
# ```
#
# Two things couple them, and both live **outside** the containers:
#
# 1. a **host directory** mounted into both (the generator writes `data` there, echo reads it);
# 2. a **published port** (`-p 8000:8000`), so the host can reach echo.
#
# Nothing else ties them together: no shared lifecycle, no restart, no health check. In this
# notebook we run exactly that and then break it on purpose.

# %% tags=["parameters"]
runtime = "auto"   # "auto", "local", "docker" or "kubernetes" (n/a here: we fall back to local)
interval = 0.5     # seconds between two numbers
duration = 5.0     # seconds we watch

# %%
import matplotlib.pyplot as plt

import appcoup_lib as ac

rt = ac.runtime_for("separate", runtime)
print(f"runtime: {rt.name}")

# %% [markdown]
# On `local`, each "container" is a process whose working directory is the shared directory; on
# `docker` they are the two containers above. On Kubernetes this scenario does not exist, and the
# reason is the point of the later notebooks: a cluster gives you better tools (pods, volumes,
# services) than a host directory and a host port.
#
# ## Start both, and look at what runs

# %%
app = rt.up("separate", interval=interval)   # port 8000, as in the commands above
app.wait_ready()
print(f"echo serves {app.url}/data")
app.processes()

# %% [markdown]
# **What to look at:** two containers, each with its own program, and nothing above them. The
# numbers below are read over HTTP, just like `curl` would.

# %%
print(app.data()[:10])

# %% [markdown]
# ## What the port means
#
# The port is part of the coupling: if another program already holds it, the second run cannot
# start. Try to start a second copy on the same port; the error names who holds it.

# %%
try:
    rt.up("separate", interval=interval, name="appcoup-separate-2")
except ac.AppcoupError as e:
    print(e)

# %% [markdown]
# ## Break it: kill echo
#
# A real crash has no warning and no clean-up: we send `SIGKILL`. Watch `/data` for a while before
# and after.
#
# **What to look at:** the red area starts at the kill and never ends. Nobody restarts echo: the
# two runs were never told they belong together, and nothing watches them.

# %%
timeline = ac.watch(app, duration, actions={duration / 3: ("kill echo", lambda: app.kill("echo"))})
timeline.plot(title="separate runs: echo is killed and stays dead")
plt.show()
print(f"seconds without data: {timeline.seconds_without_data:.1f} of {duration:g}")

# %% [markdown]
# The status and the runtime's own timeline agree: echo exited, and no restart followed. The
# generator, meanwhile, keeps writing numbers nobody can read.

# %%
for name, st in app.status().items():
    print(f"{name:<10} running={st['running']!s:<6} restarts={st['restarts']}")
for event in app.events():
    print(event)

# %% [markdown]
# ## Clean up
#
# `down()` stops both programs and removes the shared directory. (A `with rt.up(...) as app:` block
# does this by itself; we used a plain variable here to look around between cells.)

# %%
app.down()
ac.running()

# %% [markdown]
# ## Why this matters
#
# Separate runs are easy to start and easy to understand, but the coupling is **implicit**: the
# directory and the port are conventions only you know about. Nobody restarts a crashed part, and
# nothing guarantees both programs even run on the same machine.
#
# ## Try it
#
# Start `separate` again and kill the **generator** instead. Does `/data` still answer? Do new
# numbers still arrive? Check your answer with `app.status()["generator"]["running"]` and by
# calling `len(app.data())` twice, a few seconds apart.

# %%
with rt.up("separate", interval=interval, port=0) as app:
    app.wait_ready()
    app.kill("generator")
    before = len(app.data())
    ac.watch(app, 3 * interval)
    print("generator running:", app.status()["generator"]["running"],
          "| /data answers:", app.answers(), "| new numbers:", len(app.data()) - before)
