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
# **Goal:** couple two programs by a shared directory and a published port, break it, and see that without a restart policy nothing repairs it.  
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
# Nothing else ties them together: no shared lifecycle, and, as written, no restart and no health
# check. In this notebook we run exactly that and then break it on purpose.
#
# ### What `docker run` could add, and what it would still not do
#
# Each `docker run` can carry a **restart policy**, `--restart no|on-failure[:N]|always|unless-stopped`
# (the default is `no`): when the container's main process *exits*, the Docker engine starts it
# again (`on-failure` only after a non-zero exit code, at most `N` times; `unless-stopped` not after
# you stopped it yourself), each time after a delay that doubles from 100 ms. An image can also
# carry a **`HEALTHCHECK`**: a command Docker runs inside the container every few seconds. Its
# only effect is the container's *health status* (`starting`, `healthy`, `unhealthy`, shown by
# `docker ps` and `docker inspect`): an unhealthy container is **not** restarted by the engine,
# because a restart policy reacts to an exit, not to health.
#
# Neither ties the two runs together: a restart policy restarts one container on its own exit,
# and knows nothing about the other one or about the directory they share.
#
# > **What you see on local / docker / kubernetes.** The runs of this notebook have **no restart
# > policy** (on `local`, supervisord is told not to restart them either), so a killed program
# > stays dead. On `kubernetes` this scenario does not exist (below); a pod's containers restart by
# > the pod's `restartPolicy` (default `Always`), and Kubernetes does not use an image's
# > `HEALTHCHECK` at all (a Docker image-format extension, not part of the OCI image spec): the
# > kubelet runs only the probes written in the pod spec (`livenessProbe`, `readinessProbe`,
# > `startupProbe`), which notebooks 02 and 03 use.

# %% tags=["parameters"]
runtime = "auto"   # "auto", "local", "docker" or "kubernetes" (n/a here: we fall back to local)
interval = 0.5     # seconds between two numbers
duration = 5.0     # seconds we watch

# %%
import matplotlib.pyplot as plt

import appcoup_lib as ac
from appcoup_lib import experiments
from appcoup_lib.exercises import check_separate_generator_killed, predict, solution

rt = ac.runtime_for("separate", runtime)
print(f"runtime: {rt.name}")

# %% [markdown]
# On `local`, each "container" is a process whose working directory is the shared directory; on
# `docker` they are the two containers above. On Kubernetes this scenario does not exist, and the
# reason is the point of the later notebooks: a cluster gives you better tools (pods, volumes,
# services) than a host directory and a host port.
#
# ## Start both, and look at what runs
#
# `port=0` asks for any free port instead of the 8000 of the commands above, so nothing else on
# your machine (or a second run of this cell) gets in the way. Running this cell again stops the
# app it started before and starts a fresh one.

# %%
app = rt.up("separate", interval=interval, port=0)
app.wait_ready()
print(f"echo serves {app.url}/data")
app.processes()

# %%
# What the two runs share, drawn from the running app (live in JupyterLab: a killed program turns red).
app.diagram()

# %% [markdown]
# ### What was applied, and the same by hand
#
# `app.spec()` is what the runtime really applied for this app: on `kubernetes` the YAML of every
# object, with this app's image tags, namespace and `INTERVAL`; on `docker` the Dockerfiles of its
# images and each container's settings as a `docker run` states them; on `local` the supervisord
# programs and the process tree that stand in for them. `app.commands()` are the `kubectl`,
# `docker` or shell commands that do the same by hand, for this very app: copy them into a terminal.

# %%
app.spec()

# %%
app.commands()

# %% [markdown]
# **Look at it the way you will at work:** `app.status()` is `kubectl get` / `docker ps`,
# `app.events()` is `kubectl describe` / `docker events`, `app.logs(...)` is `kubectl logs -c ...` /
# `docker logs`. Where the real command-line tool is installed, the next cell runs the "get" line of
# `app.commands()` for real; then the last lines the container serving `/data` printed.

# %%
print(ac.guide.at_work(app))

# %% [markdown]
# **What to look at:** two containers, each with its own program, and nothing above them. The
# numbers below are read over HTTP, just like `curl` would.

# %%
print(app.data()[:10])

# %% [markdown]
# ## What the port means
#
# The port is part of the coupling: if another program already holds it, the second run cannot
# start. Try to start a second copy on the port the first one holds; the error names who holds it.

# %%
port = int(app.url.rsplit(":", 1)[1])
try:
    rt.up("separate", interval=interval, port=port, name="appcoup-separate-2")
except ac.AppcoupError as e:
    print(e)

# %% [markdown]
# ## Break it: kill echo
#
# A real crash has no warning and no clean-up: we send `SIGKILL`. Watch `/data` for a while before
# and after.
#
# **What to look at:** the red area starts at the kill and never ends. Nobody restarts echo: these
# runs were started without a restart policy, the two were never told they belong together, and
# nothing watches them. (With `--restart always` Docker would start echo again, after its
# back-off delay; it would still not know that echo needs the generator's directory.)

# %%
if not app.status()["echo"]["running"]:
    print("echo is already dead (this cell ran before): run the cell under 'Start both' again first.")
else:
    timeline = ac.watch(app, duration, actions={duration / 3: ("kill echo", lambda: app.kill("echo"))})
    timeline.plot(title="separate runs: echo is killed and stays dead")
    plt.show()
    print(f"seconds without data: {timeline.seconds_without_data:.1f} of {duration:g}")

# %% [markdown]
# The status and the runtime's own timeline agree: echo exited, and no restart followed (none was
# asked for). The generator, meanwhile, keeps writing numbers nobody can read.

# %%
for name, st in app.status().items():
    print(f"{name:<10} running={st['running']!s:<6} restarts={st['restarts']}")
for event in app.events():
    print(event)

# %% [markdown]
# ## The same two runs, with a restart policy
#
# Now both runs get `--restart on-failure` (on `local`: supervisord's `autorestart=unexpected`), and
# echo a health check on `/healthz` (`docker run --health-cmd ...`, what a `HEALTHCHECK` in its
# image would do). We kill echo once (an exit), then **hang** it: `SIGSTOP` leaves the process alive
# but answering nothing, and we watch for a few seconds.
#
# **What to look at:** the killed echo comes back; the hung one does not, and nothing restarted it.
# On `docker` its health turns `unhealthy`, and that is all a `HEALTHCHECK` does.

# %%
policy = experiments.restart_policy(rt, "on-failure", interval=interval, wait=duration + 3)
hung = policy["hang"]
print(f"--restart {policy['restart']}: killed echo answered again after {policy['crash_back_after']} s "
      f"(restarts: {policy['crash_restarts']})")
print(f"hung echo, watched {hung['waited']:g} s: /data answered again: {hung['data_back']}; "
      f"restarted: {', '.join(hung['restarted']) or 'nothing'}; "
      f"health seen: {', '.join(hung['health']) or f'none (nothing checks health on {rt.name})'}")

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
# directory and the port are conventions only you know about. Without a restart policy nobody
# restarts a crashed part; with one, each part is restarted alone, and nothing checks that the
# other part, or the shared directory, is still there. And nothing records that both must run on
# the same machine: start echo on another host and it answers `no data yet`, without an error.
#
# ## Try it: kill the generator instead
#
# **Predict** first: start `separate` again and kill the **generator**. Does `/data` still
# answer? Do new numbers still arrive? Replace each `...` in the `predict` cell with `True` or
# `False` and run it **before** the experiment.
#
# **The experiment** (the cell after it) starts `separate`, kills the generator, and counts the
# numbers twice, a few intervals apart. **Check** then compares your prediction with what it
# observed; the solution is folded away below that.

# %%
predict("01.1", {"data_answers": ..., "new_numbers": ...})   # True or False each

# %%
with rt.up("separate", interval=interval, port=0) as trial:
    trial.wait_ready()
    trial.kill("generator")
    before = len(trial.data())
    ac.watch(trial, 5 * interval)
    data_answers, new_numbers = trial.answers(), len(trial.data()) > before
    print("generator:", trial.status()["generator"])
print(f"/data answers: {data_answers}; new numbers arrived: {new_numbers}")

# %%
check_separate_generator_killed(data_answers, new_numbers)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# %%solution
# Solution: echo still serves the file it reads, so /data answers; nothing restarts the killed
# generator, so no new numbers arrive.
solution(check_separate_generator_killed, guess={"data_answers": True, "new_numbers": False},
         data_answers=data_answers, new_numbers=new_numbers)

# %% [markdown]
# ## Play with it
#
# Here is the same app with its **dashboard**: the numbers `/data` serves, each program's state
# and restarts, buttons to crash one, and the runtime's timeline. It updates by itself while no
# cell runs.
#
# Press **kill echo**: the plot stops, the band turns red and stays red, and the restart count
# never moves (these runs have no restart policy). Press **kill generator** on a fresh start (run the cell again): the plot goes flat.
# Nothing here repairs anything; that is what the next notebooks are about. Press **down** when
# you are done.

# %%
# The playground has a name of its own: it can stay up while you go on to the next notebook.
app = rt.up("separate", interval=interval, port=0, name=ac.default_name("play-01"))
app.wait_ready()
app.dashboard()
