-- Per run: the stored run row beside the sums over its games and fills (they must agree), money
-- in dollars and markouts in cents per contract, newest first.
SELECT r.run_id, r.strategy, r.seed, r.toxicity, r.games,
       g.n_games, g.fills, f.n_fills, g.volume, f.volume AS fill_volume,
       g.net_pnl, r.net_pnl AS run_net_pnl,
       round(r.net_pnl / 10000, 2) AS net_pnl_usd,
       round(r.mo_mid_5s / 100, 2) AS mo_mid_5s_cents,
       round(sum_mo_mid_5s / nullif(f.mid_volume, 0) / 100, 2) AS fills_mo_mid_5s_cents
FROM bt_runs r
JOIN (SELECT run_id, count(*) AS n_games, sum(fills) AS fills, sum(volume) AS volume,
             sum(net_pnl) AS net_pnl
      FROM bt_games GROUP BY run_id) g USING (run_id)
LEFT JOIN (SELECT run_id, count(*) AS n_fills, sum(count) AS volume,
                  sum(mo_mid_5s * count) AS sum_mo_mid_5s,
                  sum(count) FILTER (WHERE mo_mid_5s IS NOT NULL) AS mid_volume
           FROM bt_fills GROUP BY run_id) f USING (run_id)
ORDER BY r.started_at DESC, r.run_id;
