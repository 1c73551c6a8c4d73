"""The marks every object appcoup creates carries, so teardown and ``appcoup clean`` find them all."""

from __future__ import annotations

LABEL = "app.kubernetes.io/part-of"
LABEL_VALUE = "appcoup"
PREFIX = "appcoup-"  # where labels do not exist (processes, sockets): the name carries it
LEARNER_LABEL = "appcoup.learner"  # who started it: a learner's `clean` removes only their own things
APP_LABEL = "appcoup.app"
SCENARIO_LABEL = "appcoup.scenario"
STOP_GRACE = 10  # seconds a stop waits before SIGKILL: `docker stop`'s and a pod's terminationGracePeriodSeconds
NAME_MAX = 40  # room for "-<container>" / "-<unit>-pause" suffixes within Docker's and Kubernetes' limits

__all__ = ["APP_LABEL", "LABEL", "LABEL_VALUE", "LEARNER_LABEL", "NAME_MAX", "PREFIX", "SCENARIO_LABEL", "STOP_GRACE"]
