-- Audit step 3: the fee audit of the audited day's fills (v_fees) as the temp table
-- audit_fee_fills (order sums cover the whole order, whatever the day of its other fills).
CREATE OR REPLACE TEMP TABLE audit_fee_fills AS
SELECT * FROM v_fees
WHERE CAST($day AS DATE) IS NULL OR day = CAST($day AS DATE);
