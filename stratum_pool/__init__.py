"""stratum-pool: a Stratum V1 mining pool server."""
