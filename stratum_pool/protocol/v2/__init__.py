"""Stratum V2, sans-IO: frames, the Noise NX handshake and transport, the common and mining protocols."""
