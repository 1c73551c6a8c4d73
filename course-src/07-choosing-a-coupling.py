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
# | throughput | append 1 MB on the generator's side, time reading it at `/data` from this kernel (on kubernetes through the port-forward) | 05 |
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
from appcoup_lib import loose

rt = ac.runtime(runtime)
print(f"runtime: {rt.name}")
scenarios = [s.name for s in ac.SCENARIOS.values() if rt.name in s.runtimes]
print("scenarios it runs:", ", ".join(scenarios))

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
# Four questions decide most cases. Each answer below quotes this run's numbers.
#
# * **Ownership and release cadence**: are the two programs released by different people, at
#   different times? Then upgrading one must not restart the other, and should not fail requests.
# * **Colocation**: must they share files or `localhost`, with the lowest latency? Then they belong
#   in one unit, and scale and restart as one.
# * **Data volume**: do they exchange bulk data? An API hop costs throughput that a volume does not.
# * **Scaling**: do more copies mean more capacity for the same data, or more independent
#   producers? Only a loose coupling gives the former.

# %%
rows = {r["scenario"]: r for r in card}


def num(scenario, column):
    value = rows.get(scenario, {}).get(column)
    return value if isinstance(value, (int, float)) else None


def show(value, unit=""):
    return "n/a" if value is None else f"{value}{unit}"


def best(column, *, low=True):
    got = [(num(s, column), s) for s in rows if num(s, column) is not None]
    return (min(got) if low else max(got))[1] if got else None


lines = []
restarting = [s for s in rows if num(s, "generator restarts on upgrade")]
calm = [s for s in rows if num(s, "generator restarts on upgrade") == 0]
if restarting:
    lines.append(f"Ownership: upgrading echo restarted the generator in {', '.join(restarting)}; it did not in "
                 f"{', '.join(calm) or 'none'}. Two teams with two release cadences want the latter.")
zero_failures = [s for s in rows if num(s, "upgrade failures (2 replicas)") == 0]
if zero_failures:
    lines.append("Release cadence: with 2 replicas and a rolling update, upgrading echo failed 0 requests in "
                 f"{', '.join(zero_failures)} (with 1 replica: "
                 + ", ".join(f"{s} {show(num(s, 'upgrade failures (1 replica)'))}" for s in zero_failures) + ").")
if "pod" in rows and "service" in rows:
    lines.append(f"Colocation: first number {show(num('pod', 'first number (s)'), ' s')} in a pod against "
                 f"{show(num('service', 'first number (s)'), ' s')} through a Service; recovery after echo's crash "
                 f"{show(rows['pod'].get('recovery (s)'), ' s')} against {show(rows['service'].get('recovery (s)'), ' s')}.")
if num("volume", "throughput (MB/s)") and num("service", "throughput (MB/s)"):
    ratio = num("volume", "throughput (MB/s)") / num("service", "throughput (MB/s)")
    lines.append(f"Data volume: bulk data moved at {num('volume', 'throughput (MB/s)')} MB/s through the volume and "
                 f"{num('service', 'throughput (MB/s)')} MB/s through the adapter ({ratio:.1f}x).")
same = [s for s in rows if rows[s].get("2 replicas serve") == "the same numbers"]
own = [s for s in rows if rows[s].get("2 replicas serve") == "different numbers"]
if same or own:
    lines.append(f"Scaling: 2 replicas served the same numbers in {', '.join(same) or 'none'}, and each its own "
                 f"in {', '.join(own) or 'none'} (a copy of those is a copy of the generator too).")
never = [s for s in rows if str(rows[s].get("recovery (s)")).startswith("not within")]
if never:
    lines.append(f"Recovery: after echo crashed, /data did not answer again within {recovery_timeout:g} s in "
                 f"{', '.join(never)} (either nothing restarts echo there, see notebooks 01 and 02, or the "
                 "runtime waited longer before restarting it, see CrashLoopBackOff in notebook 03).")
fastest = best("first number (s)")
if fastest:
    lines.append(f"Fastest to a first number here: {fastest} ({show(num(fastest, 'first number (s)'), ' s')}).")
print("\n\n".join(f"- {line}" for line in lines))

# %% [markdown]
# ## Try it
#
# The scorecard is one run, on one machine. Run this notebook again with another `runtime`
# (`docker`, or `kubernetes` if you have a cluster) and compare the two tables: which rankings
# hold on both runtimes, and which numbers are properties of the runtime rather than of the
# coupling?
#
# **Check:** which scenario lets you upgrade echo without restarting the generator *and* serves
# the same numbers from 2 replicas, on this runtime? Put the scenario names in `answer`.

# %%


# %%
from appcoup_lib.exercises import check_loose_scenarios

answer = ...   # a list of scenario names, e.g. ["pod"]
check_loose_scenarios(answer, card)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution: read both columns of this run's table.
solution = [r["scenario"] for r in card
            if r.get("generator restarts on upgrade") == 0 and r.get("2 replicas serve") == "the same numbers"]
print(solution)
check_loose_scenarios(solution, card)
