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
# # 07 · Choosing a coupling: every option, measured side by side
#
# **Goal:** measure every scenario this runtime can run in the same way, in one table and one figure, and choose a coupling from the numbers.  
# **Time:** about 20 minutes (most of it waiting for the measurements).
#
# Each notebook so far measured one coupling. Here the same measurements run on every scenario,
# on the runtime you choose, right now:
#
# | column | what is done | notebook |
# |---|---|---|
# | first number | `up`, until `/data` serves a number | 00 |
# | upgrade failures (1 replica) | change one line of echo, roll it out, count failed `GET /data` (a stop and start on local and docker; the Deployment's own strategy on kubernetes) | 04 |
# | rebuild | making that new version (an image build on docker; a build plus loading the image onto the nodes on kubernetes; nothing to build on local) | 02, 03 |
# | generator restarts on upgrade | did upgrading echo restart the generator? | 02, 04 |
# | throughput | append 1 MB on the generator's side, time reading it at `/data` from this kernel (on kubernetes from inside the cluster, as in 05) | 05 |
# | 2 replicas serve | scale the unit serving `/data` to 2: the same numbers, or each its own? | 04 |
# | upgrade failures (2 replicas) | the same upgrade as a rolling update behind the front (behind the Service, by the Deployment, on kubernetes) | 04 |
# | recovery | kill echo, until `/data` answers again (waited for up to `recovery_timeout` s) | 01, 03 |
# | stop | `down()`, until everything is gone | 02 |
#
# Nothing in this notebook is typed by hand: the table, the figure and the guide below are
# computed from this run. On another machine or runtime, the numbers will differ: that is the point.

# %% tags=["parameters"]
runtime = "auto"   # "auto", "local", "docker" or "kubernetes"
interval = 0.5     # seconds between two numbers
duration = 6.0     # (unused here: every measurement has its own end)
megabytes = 1.0    # bulk data for the throughput column
recovery_timeout = 5.0  # seconds to wait for echo to come back after its crash

# %%
import matplotlib.pyplot as plt
from IPython.display import display

import appcoup_lib as ac
from appcoup_lib import guide, loose
from appcoup_lib.exercises import check_loose_scenarios, predict, solution

rt = ac.runtime(runtime)
print(f"runtime: {rt.name}")
scenarios = [s.name for s in ac.SCENARIOS.values() if rt.name in s.runtimes]
print("scenarios it runs:", ", ".join(scenarios))

# %% [markdown]
# ## Every coupling, side by side
#
# What each scenario shares on this runtime, drawn from the spec before anything runs: two
# separate runs, one container holding both programs, a pod, a Service, a volume (and, on
# `kubernetes`, two clusters). Scroll sideways to see them all; the bands under each picture say
# which namespaces its programs share.

# %%
guide.pictures(scenarios, rt.name)

# %% [markdown]
# ## Try it: predict before you measure
#
# **Predict:** in which scenarios will upgrading echo leave the generator alone (0 restarts of the
# generator) *and* 2 replicas serve the same numbers? Use the pictures above and what notebooks
# 02 to 05 measured. Put a list of scenario names into the `predict` cell and run it **before** the
# scorecard below measures them.

# %%
predict("07.1", ...)   # a list of scenario names, from the pictures above

# %% [markdown]
# ## The scorecard
#
# One app per scenario, started, measured and stopped in turn. A cell with nothing in it is
# something this runtime cannot do for that scenario; the `notes` column says why.

# %%
card = loose.scorecard(rt, scenarios, interval=interval, mb=megabytes, recovery_timeout=recovery_timeout)
display(card)

# %%
loose.plot_scorecard(card, title=f"every coupling on {rt.name}, measured now")
plt.show()

# %% [markdown]
# ## What to look at, and a decision guide
#
# Four questions decide most cases. Each answer below quotes this run's numbers
# (`guide.decision_guide` words them; it reads the table above and measures nothing).
#
# * **Ownership and release cadence**: are the two programs released by different people, at
#   different times? Then upgrading one must not restart the other, and should not fail requests.
# * **Colocation**: must they share files or `localhost`, with the lowest latency? Then they belong
#   in one unit, and scale and restart as one.
# * **Data volume**: do they exchange bulk data? An API hop costs throughput that a volume does not.
# * **Scaling**: do more copies mean more capacity for the same data, or more independent
#   producers? Only a loose coupling gives the former.

# %%
guide.decision_guide(card)

# %% [markdown]
# ## Check your prediction
#
# Which scenarios let you upgrade echo without restarting the generator *and* serve the same
# numbers from 2 replicas, on this runtime? The check compares the list you predicted with the
# two columns of this run's scorecard.
#
# The scorecard is one run, on one machine. Run this notebook again with another `runtime`
# (`docker`, or `kubernetes` if you have a cluster) and compare the two tables: which rankings
# hold on both runtimes, and which numbers are properties of the runtime rather than of the
# coupling?

# %%
check_loose_scenarios(card)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# %%solution
# Solution: read both columns of this run's table.
right = [r["scenario"] for r in card
         if r.get("generator restarts on upgrade") == 0 and r.get("2 replicas serve") == "the same numbers"]
solution(check_loose_scenarios, guess=right, card=card)

# %% [markdown]
# ## Play with it
#
# Put the coupling you would choose into `choice` and bring it up. First, look at it the way you
# will at work, as in notebooks 01 to 06: where `kubectl` or `docker` is installed, the "get" line
# of `app.commands()` run for real (on `local` there is no such tool: the status, events and logs
# say the same), then the last lines the container serving `/data` printed. These are the objects
# behind the row of the scorecard you chose.

# %%
choice = "service" if "service" in scenarios else scenarios[0]   # the coupling you would choose
app = rt.up(choice, interval=interval, port=0, name=ac.default_name("play-07"))
app.wait_ready()
print(ac.guide.at_work(app))

# %% [markdown]
# Then its **dashboard**: kill a program, scale and upgrade where the runtime can, and see whether
# it behaves as the scorecard says. Press **down** when you are done.

# %%
app.dashboard()
