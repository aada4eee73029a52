"""Several pool processes on one machine: the supervisor (``cluster.supervisor``), what a worker is
(``cluster.worker``: its extranonce1 slice, spool identity, settings) and what the workers share (``cluster.peers``:
metrics and bans). Nothing here imports the pool (``stratum_pool.serve`` runs a pool, alone or as a worker),
so ``pool`` and ``api`` may use ``cluster.peers``.

Re-exports nothing: the pool imports ``cluster.peers`` and must not pull in the supervisor to do so.
"""
