-- Audit step 2: the fills of the audited day $day (NULL = all) as the temp table audit_fills.
CREATE OR REPLACE TEMP TABLE audit_fills AS
SELECT * FROM audit_game_fills
WHERE CAST($day AS DATE) IS NULL OR day = CAST($day AS DATE);
