-- Lines per kind of the segment in seg_lines (kind NULL = invalid lines).
SELECT kind, count(*) AS n FROM seg_lines GROUP BY kind ORDER BY kind NULLS FIRST;
