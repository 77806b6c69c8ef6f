"""``trending demo``: the whole closed loop on this machine, with the real pieces.

synthetic titles (bad rows quarantined) -> snapshot -> Feast -> KFP training pipeline (kfp.local)
-> registry (v1 production) -> KServe ModelServer (V1, V2, a bad request) -> normal traffic ->
drifted traffic -> drift service -> Prometheus DriftDetected -> Alertmanager -> retrain trigger
(bearer token) -> continuous-training run -> gate -> v2 staged as canary -> local canary rollout ->
promotion -> a broken canary rolled back -> timeline from the registry's event log and an HTML
report. Without Prometheus/Alertmanager installed it stops after serving and says what to install.
Every process it starts is stopped at the end, on errors and on Ctrl-C.

The story is told in :mod:`cli.demo.command`; each numbered step is one function in
:mod:`cli.demo.stages`, built from the processes in :mod:`cli.demo.services`, the requests in
:mod:`cli.demo.traffic` and the console lines in :mod:`cli.demo.output`. The demo's knobs are in
:mod:`cli.demo.parameters`.
"""

from __future__ import annotations

from cli.demo.command import demo

__all__ = ["demo"]
