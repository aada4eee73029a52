-- Schema 2: what the share loader records to keep reward windows exact and auditable.
-- submit_accepted: did the daemons take the block at submission. A refused block is kept for the record
-- (status 'orphaned', no credits) but never ends a PROP round; a block orphaned later still ended its round.
-- network_difficulty and pplns_window_factor: how the block's PPLNS window (N = factor x difficulty) was sized.
ALTER TABLE blocks ADD COLUMN submit_accepted boolean NOT NULL DEFAULT true;
ALTER TABLE blocks ADD COLUMN network_difficulty double precision NOT NULL DEFAULT 0;
ALTER TABLE blocks ADD COLUMN pplns_window_factor double precision NOT NULL DEFAULT 0;
CREATE INDEX blocks_round_end ON blocks (coin_id, node_id, share_seq) WHERE submit_accepted;
