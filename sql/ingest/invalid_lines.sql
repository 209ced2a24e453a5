-- The lines of seg_lines that journal.read_records would skip, with its reasons (first 100).
SELECT
    line_no,
    CASE WHEN json_valid(line) THEN 'not a record (needs kind and id)' ELSE 'invalid JSON' END
        AS reason,
    left(line, 120) AS excerpt
FROM seg_lines
WHERE kind IS NULL
ORDER BY line_no
LIMIT 100;
