-- The operator API lists each cell's clusters (tenants): an index on the cell, in the
-- order it lists them.
CREATE INDEX clusters_cell ON clusters (cell_id, created_at, id);
