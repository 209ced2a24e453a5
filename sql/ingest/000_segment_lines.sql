-- The lines of one published journal segment, as the temp table seg_lines (ingest.py runs this
-- first, then one j_<kind>.sql per kind present).
--
-- Parameters: $path (the segment file), $segment (its file name, stored in every row).
-- Columns: line_no (1-based, as journal.read_records counts), line (text without the newline),
-- kind (the record's kind, NULL when the line is not a JSON object with string "kind" and "id":
-- exactly the lines journal.read_records skips as invalid), segment.
-- The empty string after the file's final newline is not a line (a published segment ends on one).
CREATE OR REPLACE TEMP TABLE seg_lines AS
WITH raw AS (
    SELECT string_split(content, chr(10)) AS l FROM read_text($path)
), lines AS (
    SELECT unnest(l) AS line, generate_subscripts(l, 1) AS line_no, len(l) AS n FROM raw
)
SELECT
    line_no,
    line,
    CASE WHEN json_valid(line) THEN
        CASE WHEN json_type(line) = 'OBJECT' THEN
            CASE WHEN json_type(line, 'kind') = 'VARCHAR' AND json_type(line, 'id') = 'VARCHAR'
                 THEN line ->> 'kind' END
        END
    END AS kind,
    $segment AS segment
FROM lines
WHERE NOT (line_no = n AND line = '');
