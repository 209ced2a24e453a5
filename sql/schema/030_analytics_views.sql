-- Analytics views (what users and the nightly audit query). Units: prices, fees and money in
-- price units ($0.0001; DOUBLE where a mid, a theo or a /100 makes halves); columns ending _c in
-- cents; counts and positions in centi-contracts, contracts = count / 100; times ns (UTC);
-- day / hour are UTC. Sign convention (quoting-math §5.2-5.3): s = +1 for a YES buy (side 'bid'),
-- -1 for a YES sell ('ask'); every edge and markout is s × (reference − price), so positive is
-- good for us.

-- The game (Kalshi event) each worker quoted: the event of its theo records, else of the markets
-- it ordered, else of the markets it traded.
CREATE OR REPLACE VIEW worker_games AS
WITH seen AS (
    SELECT worker_id, event_ticker, count(*) AS n, 0 AS pri
    FROM read_parquet('${RECORD}/j_theo/*.parquet', union_by_name = true)
    WHERE worker_id IS NOT NULL AND event_ticker IS NOT NULL GROUP BY ALL
    UNION ALL
    SELECT o.worker_id, COALESCE(m.event_ticker, event_of_market(o.market)), count(*), 1
    FROM orders o LEFT JOIN markets m USING (market) WHERE o.market IS NOT NULL GROUP BY ALL
    UNION ALL
    SELECT f.worker_id, COALESCE(m.event_ticker, event_of_market(f.market)), count(*), 2
    FROM fills f LEFT JOIN markets m USING (market) GROUP BY ALL
)
SELECT worker_id, arg_min(event_ticker, pri * 1e12 - n) AS event_ticker
FROM seen GROUP BY worker_id;

-- Each fill's markouts (quoting-math §5.3): markout(h) = s × (m(t + h) − price), m the Kalshi
-- mid at the last book update at or before fill time + h (ASOF JOIN per market on
-- COALESCE(exchange_ns, receipt_ns)), h = 1 / 5 / 30 s; the same against the theo the workers
-- used (prob × 10000, ASOF on the time they took it). Mids come from book_mids (book_tops
-- without its dedupe, see there). edge_* = the markout at h = 0 (half-spread
-- captured against the reference at the fill). Price units per contract; _c = cents per
-- contract. quoted_spread: our own ask − bid on that market in the worker's latest quote
-- decision at or before the fill (both sides quoted), else the book's spread at the fill.
-- flag_<h>: the markout is worse than −quoted_spread / 2 (adverse selection ate more than the
-- half-spread the quote earns); flagged = any horizon flagged.
CREATE OR REPLACE VIEW v_markouts AS
WITH f AS (
    SELECT f.*, COALESCE(m.event_ticker, event_of_market(f.market)) AS event_ticker
    FROM fills f LEFT JOIN markets m USING (market)
), probes AS (
    SELECT f.trade_id, f.market, h.h_s, f.fill_ns + h.h_s * 1000000000 AS probe_ns
    FROM f CROSS JOIN markout_horizons h
), at_mid AS (
    SELECT p.trade_id, p.h_s, b.mid, b.spread
    FROM probes p ASOF LEFT JOIN book_mids b
      ON p.market = b.market AND p.probe_ns >= b.t_ns
), at_theo AS (
    SELECT p.trade_id, p.h_s, round(t.prob * 10000, 6) AS theo
    FROM probes p ASOF LEFT JOIN (SELECT market, used_ns, prob FROM theos
                                  WHERE market IS NOT NULL AND prob IS NOT NULL) t
      ON p.market = t.market AND p.probe_ns >= t.used_ns
), wide AS (
    SELECT m.trade_id,
           max(m.mid) FILTER (WHERE m.h_s = 0) AS mid_0,
           max(m.mid) FILTER (WHERE m.h_s = 1) AS mid_1s,
           max(m.mid) FILTER (WHERE m.h_s = 5) AS mid_5s,
           max(m.mid) FILTER (WHERE m.h_s = 30) AS mid_30s,
           max(m.spread) FILTER (WHERE m.h_s = 0) AS book_spread_0,
           max(t.theo) FILTER (WHERE t.h_s = 0) AS theo_0,
           max(t.theo) FILTER (WHERE t.h_s = 1) AS theo_1s,
           max(t.theo) FILTER (WHERE t.h_s = 5) AS theo_5s,
           max(t.theo) FILTER (WHERE t.h_s = 30) AS theo_30s
    FROM at_mid m JOIN at_theo t USING (trade_id, h_s)
    GROUP BY m.trade_id
), quoted AS (
    SELECT worker_id, market, decided_ns,
           min(price) FILTER (WHERE side = 'ask') - max(price) FILTER (WHERE side = 'bid')
               AS quoted_spread
    FROM decision_quotes
    GROUP BY worker_id, market, decision_id, decided_ns
), spread_at AS (
    SELECT f.trade_id, q.quoted_spread
    FROM f ASOF LEFT JOIN quoted q
      ON f.worker_id = q.worker_id AND f.market = q.market AND f.fill_ns >= q.decided_ns
), m AS (
    SELECT f.trade_id, f.worker_id, f.event_ticker, f.market, f.side, f.sign, f.is_taker,
           f.price, f.count, f.count / 100.0 AS contracts, f.fee, f.order_id, f.fill_ns,
           ns_to_ts(f.fill_ns) AS fill_ts, date_trunc('hour', ns_to_ts(f.fill_ns)) AS hour,
           CAST(ns_to_ts(f.fill_ns) AS DATE) AS day, f.backfill,
           w.mid_0, w.mid_1s, w.mid_5s, w.mid_30s, w.theo_0, w.theo_1s, w.theo_5s, w.theo_30s,
           f.sign * (w.mid_0 - f.price) AS edge_mid,
           f.sign * (w.mid_1s - f.price) AS markout_mid_1s,
           f.sign * (w.mid_5s - f.price) AS markout_mid_5s,
           f.sign * (w.mid_30s - f.price) AS markout_mid_30s,
           f.sign * (w.theo_0 - f.price) AS edge_theo,
           f.sign * (w.theo_1s - f.price) AS markout_theo_1s,
           f.sign * (w.theo_5s - f.price) AS markout_theo_5s,
           f.sign * (w.theo_30s - f.price) AS markout_theo_30s,
           COALESCE(s.quoted_spread, w.book_spread_0) AS quoted_spread,
           CASE WHEN s.quoted_spread IS NOT NULL THEN 'decision'
                WHEN w.book_spread_0 IS NOT NULL THEN 'book' END AS quoted_spread_source
    FROM f
    JOIN wide w USING (trade_id)
    LEFT JOIN spread_at s USING (trade_id)
)
SELECT *,
       edge_mid / 100 AS edge_mid_c,
       markout_mid_1s / 100 AS markout_mid_1s_c,
       markout_mid_5s / 100 AS markout_mid_5s_c,
       markout_mid_30s / 100 AS markout_mid_30s_c,
       edge_theo / 100 AS edge_theo_c,
       markout_theo_1s / 100 AS markout_theo_1s_c,
       markout_theo_5s / 100 AS markout_theo_5s_c,
       markout_theo_30s / 100 AS markout_theo_30s_c,
       markout_mid_1s < -quoted_spread / 2.0 AS flag_1s,
       markout_mid_5s < -quoted_spread / 2.0 AS flag_5s,
       markout_mid_30s < -quoted_spread / 2.0 AS flag_30s,
       COALESCE(markout_mid_1s < -quoted_spread / 2.0, false)
           OR COALESCE(markout_mid_5s < -quoted_spread / 2.0, false)
           OR COALESCE(markout_mid_30s < -quoted_spread / 2.0, false) AS flagged
FROM m;

-- Each fill's charged fee against the fee schedule recomputed from price, count, maker/taker
-- and the event's fee_type / fee_multiplier (mmcore.fees, quoting-math §5.1), exactly in
-- integers: raw = 0.07 × multiplier × share × C × P × (1 − P) dollars, share 1 for takers and
-- 1/4 (quadratic_with_maker_fees), 1/2 (…combo…), 0 (quadratic) for makers;
-- schedule_trade_fee = raw rounded up to $0.0001; schedule_fee_cent = raw rounded up to the
-- cent (one fill alone, the legacy rule); schedule_fee = what Kalshi charges this fill: the trade
-- fee plus the rounding of the balance change floored to the cent, minus the whole cents the
-- order's accumulator refunds (fees.FeeAccumulator, a non-direct member's $0.01 precision;
-- fills of an order in fill time order). fee_diff = fee − schedule_fee. order_*: sums over the
-- fill's order; order_alert when they differ by more than 1¢ (quoting-math §5.4). 'flat' series
-- and events the calendar has not recorded have fee_known = false and NULL schedule fees.
-- fee_multiplier is taken to 4 decimals.
CREATE OR REPLACE VIEW v_fees AS
WITH f AS (
    SELECT f.*, COALESCE(m.event_ticker, event_of_market(f.market)) AS event_ticker,
           CAST(ns_to_ts(f.fill_ns) AS DATE) AS day
    FROM fills f LEFT JOIN markets m USING (market)
), s AS (
    SELECT f.*, e.fee_type, e.fee_multiplier,
           CASE WHEN e.fee_type NOT IN ('quadratic', 'quadratic_with_maker_fees',
                                         'quadratic_with_combo_maker_fees') THEN NULL
                WHEN f.is_taker THEN 4
                WHEN e.fee_type = 'quadratic_with_maker_fees' THEN 1
                WHEN e.fee_type = 'quadratic_with_combo_maker_fees' THEN 2
                ELSE 0 END AS share4,
           CAST(round(COALESCE(e.fee_multiplier, 1.0) * 10000) AS HUGEINT) AS mult_e4
    FROM f LEFT JOIN events e USING (event_ticker)
), n AS (
    -- raw fee in price units = fee_num / 4e12
    SELECT s.*, 7 * share4 * mult_e4 * CAST(count AS HUGEINT) * price * (10000 - price) AS fee_num
    FROM s
), r AS (
    SELECT n.*,
           CAST(floor_div(fee_num + 3999999999999, 4000000000000) AS BIGINT) AS schedule_trade_fee,
           CAST(floor_div(fee_num + 399999999999999, 400000000000000) * 100 AS BIGINT)
               AS schedule_fee_cent
    FROM n
), b AS (
    -- the balance change of the fill in 1/100 price units, and its rounding to the cent
    SELECT r.*,
           CAST(CASE side WHEN 'bid' THEN -1 ELSE 1 END * CAST(price AS HUGEINT) * count
                - 100 * schedule_trade_fee AS HUGEINT) AS change100
    FROM r
), acc AS (
    SELECT b.*, change100 - floor_div(change100, 10000) * 10000 AS rounding100
    FROM b
), cum AS (
    SELECT acc.*,
           sum(rounding100) OVER (PARTITION BY COALESCE(order_id, trade_id)
                                  ORDER BY fill_ns, trade_id ROWS UNBOUNDED PRECEDING) AS cum100
    FROM acc
), per_fill AS (
    SELECT trade_id, order_id, worker_id, event_ticker, market, side, is_taker, price, count,
           fee, fill_ns, day, fee_type, fee_multiplier, share4 IS NOT NULL AS fee_known,
           CAST(fee_num AS DOUBLE) / 4e12 AS schedule_fee_raw,
           schedule_trade_fee, schedule_fee_cent,
           CAST(schedule_trade_fee + floor_div(rounding100 + 99, 100)
                - 100 * (floor_div(cum100, 10000) - floor_div(cum100 - rounding100, 10000))
                AS BIGINT) AS schedule_fee
    FROM cum
)
SELECT *,
       fee - schedule_fee AS fee_diff,
       CAST(sum(fee) OVER o AS BIGINT) AS order_fee,
       CAST(sum(schedule_fee) OVER o AS BIGINT) AS order_schedule_fee,
       CAST(sum(fee) OVER o - sum(schedule_fee) OVER o AS BIGINT) AS order_fee_diff,
       abs(sum(fee) OVER o - sum(schedule_fee) OVER o) > 100 AS order_alert
FROM per_fill
WINDOW o AS (PARTITION BY COALESCE(order_id, trade_id));

-- Viability per market and UTC day (quoting-math §5.2) at h* = 30 s, money in price units:
-- spread_capture = Σ C·s·(mid_0 − price), adverse_selection = −Σ C·s·(mid_30s − mid_0) (a cost:
-- positive when the book moved against our fills), over the fills with both mids; fees = Σ fee
-- over all fills (so a fill without a mid still pays); net = spread_capture −
-- adverse_selection − fees (= Σ C·markout_mid_30s − fees); viable = net > 0. net_theo: the
-- same against the theo (Σ C·markout_theo_30s − fees). *_c_per_contract in cents per contract.
-- viability_of(markouts): the same over any table shaped like v_markouts (the audit passes the
-- fills it selected, materialised once); v_viability = viability_of('v_markouts').
CREATE OR REPLACE MACRO viability_of(markouts) AS TABLE
WITH g AS (
    SELECT day, event_ticker, market,
           count(*) AS fills,
           sum(count) / 100.0 AS contracts,
           count(*) FILTER (WHERE mid_0 IS NULL OR mid_30s IS NULL) AS fills_unmarked,
           COALESCE(sum(sign * (mid_0 - price) * count / 100.0)
                    FILTER (WHERE mid_0 IS NOT NULL AND mid_30s IS NOT NULL), 0) AS spread_capture,
           COALESCE(-sum(sign * (mid_30s - mid_0) * count / 100.0)
                    FILTER (WHERE mid_0 IS NOT NULL AND mid_30s IS NOT NULL), 0) AS adverse_selection,
           CAST(sum(fee) AS BIGINT) AS fees,
           COALESCE(sum(markout_theo_30s * count / 100.0), 0) AS theo_markout_money,
           count(*) FILTER (WHERE flagged) AS flagged_fills
    FROM query_table(markouts)
    GROUP BY day, event_ticker, market
)
SELECT day, event_ticker, market, fills, contracts, fills_unmarked, flagged_fills,
       spread_capture, adverse_selection, fees,
       spread_capture - adverse_selection - fees AS net,
       theo_markout_money - fees AS net_theo,
       spread_capture / contracts / 100 AS spread_capture_c_per_contract,
       adverse_selection / contracts / 100 AS adverse_selection_c_per_contract,
       fees / contracts / 100 AS fees_c_per_contract,
       (spread_capture - adverse_selection - fees) / contracts / 100 AS net_c_per_contract,
       spread_capture - adverse_selection - fees > 0 AS viable
FROM g;

CREATE OR REPLACE VIEW v_viability AS SELECT * FROM viability_of('v_markouts');

-- P&L per market (v_pnl) and per game (v_pnl_game), money in price units ($0.0001).
-- position = Σ s·count (centi-contracts, YES terms); trading_cash = −Σ s·price·C; realised_cash
-- = trading_cash − fees. Marks per contract (price units): settle_value = 10000 / 0 once the
-- market settled 'yes' / 'no' (settlements, else markets.result); theo_value = the workers' last
-- theo × 10000 (else the last published snapshot); mid_value = the last book mid. pnl uses the
-- first known of settle, theo, mid (mark_source says which); pnl_theo and pnl_settled use that
-- mark only (NULL when unknown). position_value = position / 100 × mark.
-- Attribution (exact: the terms add up to pnl, residual = float rounding only). For each fill,
-- with m0 = mid at the fill (the price itself when unknown), m30 = mid at +30 s (m0 when
-- unknown) and M = the mark:
--     s·C·(M − price) = s·C·(m0 − price)   spread capture
--                     + s·C·(m30 − m0)     −adverse selection (the book's move against us)
--                     + s·C·(M − m30)      inventory carry (holding past h* = 30 s, to the mark)
-- and pnl = Σ s·C·(M − price) − fees = spread_capture − adverse_selection + inventory_carry − fees.
-- pnl_of(markouts): the same over any table shaped like v_markouts; v_pnl = pnl_of('v_markouts').
CREATE OR REPLACE MACRO pnl_of(markouts) AS TABLE
WITH f AS (
    SELECT * FROM query_table(markouts)
), last_theo AS (
    SELECT market, arg_max(prob, used_ns) AS prob FROM theos
    WHERE market IS NOT NULL AND prob IS NOT NULL GROUP BY market
), last_snapshot AS (
    SELECT market, arg_max(theo, as_of_ns) AS prob FROM theo_snapshots
    WHERE theo IS NOT NULL GROUP BY market
), last_mid AS (
    SELECT market, arg_max(mid, t_ns) AS mid FROM book_mids
    WHERE mid IS NOT NULL AND market IN (SELECT market FROM f) GROUP BY market
), results AS (
    SELECT mk0.market, lower(COALESCE(st.result, mk.result)) AS result
    FROM (SELECT DISTINCT market FROM f) mk0
    LEFT JOIN settlements st ON st.market = mk0.market
    LEFT JOIN markets mk ON mk.market = mk0.market
), marks AS (
    SELECT mk.market,
           CASE r.result WHEN 'yes' THEN 10000.0::DOUBLE WHEN 'no' THEN 0.0::DOUBLE END AS settle_value,
           COALESCE(lt.prob, ls.prob) * 10000 AS theo_value,
           lm.mid AS mid_value
    FROM (SELECT DISTINCT market FROM f) mk
    LEFT JOIN results r USING (market)
    LEFT JOIN last_theo lt USING (market)
    LEFT JOIN last_snapshot ls USING (market)
    LEFT JOIN last_mid lm USING (market)
), marked AS (
    SELECT f.*, k.settle_value, k.theo_value, k.mid_value,
           COALESCE(k.settle_value, k.theo_value, k.mid_value) AS mark,
           CASE WHEN k.settle_value IS NOT NULL THEN 'settlement'
                WHEN k.theo_value IS NOT NULL THEN 'theo'
                WHEN k.mid_value IS NOT NULL THEN 'mid' END AS mark_source,
           COALESCE(f.mid_0, f.price) AS m0,
           COALESCE(f.mid_30s, f.mid_0, f.price) AS m30
    FROM f LEFT JOIN marks k USING (market)
), g AS (
    SELECT event_ticker, market,
           count(*) AS fills,
           CAST(sum(sign * count) AS BIGINT) AS position,
           -sum(sign * price * count) / 100.0 AS trading_cash,
           CAST(sum(fee) AS BIGINT) AS fees,
           any_value(mark) AS mark, any_value(mark_source) AS mark_source,
           any_value(settle_value) AS settle_value, any_value(theo_value) AS theo_value,
           any_value(mid_value) AS mid_value,
           sum(sign * (m0 - price) * count) / 100.0 AS spread_capture,
           -sum(sign * (m30 - m0) * count) / 100.0 AS adverse_selection,
           sum(sign * (mark - m30) * count) / 100.0 AS inventory_carry,
           min(fill_ns) AS first_fill_ns, max(fill_ns) AS last_fill_ns
    FROM marked
    GROUP BY event_ticker, market
)
SELECT event_ticker, market, fills, position, trading_cash, fees,
       trading_cash - fees AS realised_cash,
       mark, mark_source, settle_value, theo_value, mid_value,
       position / 100.0 * mark AS position_value,
       trading_cash - fees + position / 100.0 * mark AS pnl,
       trading_cash - fees + position / 100.0 * theo_value AS pnl_theo,
       trading_cash - fees + position / 100.0 * settle_value AS pnl_settled,
       spread_capture, adverse_selection, inventory_carry,
       trading_cash - fees + position / 100.0 * mark
           - (spread_capture - adverse_selection + inventory_carry - fees) AS residual,
       first_fill_ns, last_fill_ns
FROM g;

CREATE OR REPLACE VIEW v_pnl AS SELECT * FROM pnl_of('v_markouts');

CREATE OR REPLACE VIEW v_pnl_game AS
SELECT event_ticker, count(*) AS markets, CAST(sum(fills) AS BIGINT) AS fills,
       sum(trading_cash) AS trading_cash, CAST(sum(fees) AS BIGINT) AS fees, sum(realised_cash) AS realised_cash,
       sum(position_value) AS position_value, sum(pnl) AS pnl, sum(pnl_theo) AS pnl_theo,
       sum(pnl_settled) AS pnl_settled, sum(spread_capture) AS spread_capture,
       sum(adverse_selection) AS adverse_selection, sum(inventory_carry) AS inventory_carry,
       sum(residual) AS residual, string_agg(DISTINCT mark_source, ',') AS mark_sources,
       sum(pnl) / 10000 AS pnl_dollars
FROM v_pnl
GROUP BY event_ticker;

-- Kill-switch / trading-state events with the game of their worker: for a state change,
-- until_ns = the worker's next state change and duration_s the time spent in to_state (NULL for
-- the last one and for errors).
CREATE OR REPLACE VIEW v_kill_events AS
WITH k AS (
    SELECT k.*, g.event_ticker, ns_to_ts(k.ts_ns) AS ts,
           CASE WHEN k.kind = 'state_change' THEN
               lead(k.ts_ns) OVER (PARTITION BY k.worker_id, k.kind ORDER BY k.ts_ns, k.event_id)
           END AS until_ns
    FROM kill_events k LEFT JOIN worker_games g USING (worker_id)
)
SELECT *, (until_ns - ts_ns) / 1e9 AS duration_s FROM k;

-- The fills v_markouts flags (markout worse than half the quoted spread at some horizon).
CREATE OR REPLACE VIEW v_markout_flags AS
SELECT trade_id, worker_id, event_ticker, market, side, price, count, fill_ns, day, hour,
       quoted_spread, quoted_spread_source, markout_mid_1s, markout_mid_5s, markout_mid_30s,
       flag_1s, flag_5s, flag_30s
FROM v_markouts WHERE flagged;
