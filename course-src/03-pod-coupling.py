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
# | echo | its own image, serves `/tmp/in` on port 8000 |
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
app.status()

# %% [markdown]
# ## Kill echo again
#
# Same crash as in notebook 02: `SIGKILL` to echo.
#
# **What to look at:** a short red gap, then the numbers continue, and **more** of them than
# before the crash: the generator never stopped writing, so nothing was lost while echo was away.
# Only echo's restart count goes up.

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
# **On Kubernetes, how does `kill` reach echo?** Nothing here logs into the node. Inside its own
# container, echo would be PID 1, and the kernel ignores signals sent to PID 1 from inside its
# namespace. So the course's pods set `shareProcessNamespace: true` (see `manifests/pod/pod.yaml`):
# the pod's tiny *pause* process is PID 1, the programs are ordinary processes, and `app.kill`
# runs `kill -9` through `kubectl exec`-style exec. What it changes: each container sees the
# others' processes (`app.processes()` sorts them by the program each container starts), and a
# program's SIGTERM handling no longer depends on being PID 1. `single-image` keeps its own PID
# namespace on purpose: its supervisor *is* PID 1, which is the lesson of notebook 02.

# %%
app.down()

# %% [markdown]
# ## Measured: how long until `/data` answers again?
#
# We kill echo a few times in each coupling and time how long `/data` is gone. In the single
# image with the naive supervisor it never comes back, so we compare with the forwarding
# supervisor, which at least makes the container fail so it gets restarted (generator and all).

# %%
from appcoup_lib.measure import recovery


def recoveries(scenario, supervisor="naive", rounds=3):
    times = []
    with rt.up(scenario, supervisor=supervisor, interval=interval, port=0) as app:
        app.wait_ready()
        for _ in range(rounds):
            ac.watch(app, 1.5)  # let it settle, as a real app would between crashes
            times.append(recovery(app, "echo", timeout=60))
    return times


measured = {"pod": recoveries("pod"), "single image (init)": recoveries("single-image", "init")}
for name, times in measured.items():
    print(f"{name:<20}", ", ".join(f"{t:.2f} s" if t is not None else "never" for t in times))

plt.figure(figsize=(5, 2.5))
plt.barh(list(measured), [max(t for t in ts if t is not None) for ts in measured.values()],
         color=["tab:green", "tab:orange"])
plt.xlabel("worst seconds until /data answers again")
plt.show()

# %% [markdown]
# ## Measured: changing one program
#
# With one image per program, a change to echo rebuilds only echo's image and replaces only the
# echo container; the generator keeps running. Compare with the single image in notebook 02.

# %%
if rt.name == "docker":
    from appcoup_lib import lessons

    for scenario in ("single-image", "pod"):
        change = lessons.rebuild_after_change(rt, scenario, program="echo", interval=interval)
        print(scenario, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in change.items()})
else:
    print(f"The rebuild measurement needs the docker runtime (this notebook runs on {rt.name}); "
          "run it with runtime='docker' to see it.")

# %% [markdown]
# ## What a pod still does not give you
#
# The two containers are still **deployed together**: a new version of either one means a new
# pod, and both containers start again. They also scale together, and they must fit on one node.
# Notebooks 04 and 05 loosen the coupling further, with a Service and with a persistent volume.
#
# ## Try it
#
# Start the pod again and kill the **generator**. Which container restarts, and does echo notice?
# Check with `app.status()["generator"]["restarts"]` and `app.status()["echo"]["restarts"]`.

# %%
with rt.up("pod", interval=interval, port=0) as app:
    app.wait_ready()
    ac.watch(app, 1.5)
    app.kill("generator")
    app.wait_until(lambda: app.status()["generator"]["restarts"] >= 1, timeout=60, what="the generator to restart")
    print({name: st["restarts"] for name, st in app.status().items()})
