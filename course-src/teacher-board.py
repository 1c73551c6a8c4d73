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
# # The teacher's board
#
# **Goal:** see, while the class works, where every learner is, how their checks went, what they
# run, and whose app is in trouble; clean up after one learner or after everyone.
# **Time:** open it at the start of the class and leave it on your screen (not the projector:
# it names people).
#
# Nothing is submitted. Each `check_...()` a learner runs writes its verdict beside their
# prediction, in their own state file (`~/.cache/appcoup/predictions.json`); on a cluster where
# each learner has one namespace (the JupyterHub recipe in `classroom/`), the same file is also
# the ConfigMap `appcoup-progress` in that namespace. This board reads those, the Docker engine's
# containers (each carries the label `appcoup.learner`) and the cluster's pods labelled
# `app.kubernetes.io/part-of=appcoup`.
#
# * **On one shared machine** run this notebook (or `appcoup classroom --watch`) as root, or as a
#   user who may read `/home/*/.cache/appcoup/` and the Docker socket.
# * **On a cluster** the kernel needs a teacher's kubeconfig that may list pods, ConfigMaps, claims
#   and namespaces in every namespace (`kubectl auth can-i list pods -A`).
#
# The same board in a terminal: `appcoup classroom` (once) or `appcoup classroom --watch`.

# %% [markdown]
# The cell below holds the notebook's **parameters**: where the learners' homes are, whether to
# read the Docker engine and the cluster (`None`: when a kubeconfig is there), and how often the
# table is redrawn.

# %% tags=["parameters"]
homes = ["/home"]   # each DIR/*/.cache/appcoup is a learner's state directory
docker = True       # read the Docker engine's containers
cluster = None      # True, False, or None: when a kubeconfig is there
period = 5.0        # seconds between two redraws of the live table
runtime = "auto"    # unused here; every course notebook has it
interval = 0.5      # unused here
duration = 5.0      # unused here

# %%
import appcoup_lib as ac
from appcoup_lib import classroom

# %% [markdown]
# ## The class, now
#
# One row per learner: **at** is the exercise of their latest record (the exercise id carries the
# notebook: `03.1` is notebook 03); **checks** counts the exercises they checked and how many were
# right (and predictions not checked yet); **last activity** is the time of their latest record;
# **apps** what they run and where; **trouble** an app that needs you: on docker a container that
# exited (nothing restarts it), is restarting or unhealthy; on a cluster a container in
# CrashLoopBackOff or ImagePullBackOff, a pod Pending or not ready for more than a minute, a claim
# Pending that long. The notes under the table say what could not be read.

# %%
now = classroom.board(homes=homes, docker=docker, cluster=cluster)
now

# %% [markdown]
# ## Live
#
# The table below redraws itself every `period` seconds while you teach (a thread of this
# kernel; running the cell again replaces it). `board_view.stop()` ends it.

# %%
board_view = classroom.watch(period, homes=homes, docker=docker, cluster=cluster)
board_view

# %% [markdown]
# ## Who needs help
#
# The learners in trouble, and those silent for more than ten minutes: walk over to them first.

# %%
quiet = [lr.name for lr in now.learners if lr.last is not None and now.taken - lr.last > 600]
print("in trouble:", ", ".join(f"{lr.name} ({'; '.join(lr.trouble)})" for lr in now.learners if lr.trouble) or "nobody")
print("quiet for more than 10 minutes:", ", ".join(quiet) or "nobody")

# %% [markdown]
# ## Try it: clean up
#
# A learner's app that is stuck can be removed for them: their containers, networks and volumes
# on the Docker engine, their app namespaces or (in a shared namespace) their apps' objects on the
# cluster. Their progress stays on the board. Put a learner's name below and run the cell; at the
# end of the class, `classroom.clean(all_learners=True, homes=homes)` removes the apps of every
# learner with a home there (without `homes`, of everyone on the engine and the cluster).
# In a terminal: `appcoup classroom clean LEARNER`, `appcoup classroom clean --all --homes /home`.

# %%
learner = ""   # a learner's name, as the board shows it
if learner:
    print("\n".join(classroom.clean(learner, docker=docker, cluster=cluster)) or "nothing to clean")

# %%
board_view.stop()
