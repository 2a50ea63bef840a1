-- Rejected input and why.
SELECT uri, reason, stage, seen_at FROM quarantine ORDER BY seen_at DESC, uri;
