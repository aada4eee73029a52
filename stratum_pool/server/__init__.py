"""The network edge: the asyncio adapter between sockets and sessions (``server.stratum``) and the limits
it and the pool enforce against bad input and abuse (``server.limits``).

Re-exports nothing: ``config`` imports ``server.limits`` for the ``[limits]`` and ``[bans]`` settings and
must not pull in the adapter (and with it protocol, shares, jobs) to do so.
"""
