-- Demo summary: P&L per game ($) and its attribution (v_pnl_game; money in price units / 10000).
SELECT event_ticker AS game, fills,
       round(pnl / 10000, 2) AS pnl_usd,
       round(spread_capture / 10000, 2) AS spread_capture_usd,
       round(-adverse_selection / 10000, 2) AS adverse_selection_usd,
       round(-fees / 10000, 2) AS fees_usd,
       round(inventory_carry / 10000, 2) AS inventory_carry_usd,
       mark_sources
FROM v_pnl_game
ORDER BY game;
