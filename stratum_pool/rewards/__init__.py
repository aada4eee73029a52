"""Reward schemes (SOLO, PPLNS, PROP): a block's reward and a window of share weights in, credits out."""
