"""Alias data: The Odds API team names ↔ Kalshi team codes, per league. Data only, no logic.

Why a hand-kept table: orientation (which Kalshi market is which team) is the worst-case bug of a
sports market maker — quoting the home team's theo on the away team's book. So names are mapped to
codes through an explicit, reviewed table, never by position in the ticker or by fuzzy guessing
(reference/odds-api.md §4.3, §5). Lookups go through :mod:`mmcore.odds.teams`, which normalises
both sides with :func:`mmcore.odds.teams.normalise_name`, so the names below only need to differ
in *words*, not in accents, case, punctuation, ``&``/``and``, ``St.``/``Saint`` or FC/AFC/… tags.

Layout (keyed by The Odds API sport key):

- :data:`TEAM_NAMES` — ``{sport_key: {primary_code: (name, variant, ...)}}``. The primary code is
  the one Kalshi is believed to use today; the first name is The Odds API's display name.
- :data:`ALTERNATE_CODES` — ``{sport_key: {primary_code: (other codes Kalshi has used, ...)}}``.
  Kalshi is not consistent (Chelsea is both ``CFC`` and ``CHE``; the Rams both ``LA`` and
  ``LAR``), so a game matches if its market codes are *any* of a team's codes. A code may belong to
  one team only within a league (tests check this).
- :data:`SERIES_BY_SPORT` — the Kalshi full-game winner series for each sport key.

Provenance: codes are Kalshi's as seen in event/market tickers quoted in third-party code and
fixtures (2025–26), not an official list. Entries marked ``# unverified`` are our best guess (the
standard league abbreviation) and were not seen in a Kalshi ticker; check them against
``GET /markets?series_ticker=…`` before trading that team. An unknown code fails safe: the game is
reported unmatched with its code, never matched by guess.
"""

from __future__ import annotations

SERIES_BY_SPORT: dict[str, str] = {
    "basketball_nba": "KXNBAGAME",
    "americanfootball_nfl": "KXNFLGAME",
    "icehockey_nhl": "KXNHLGAME",
    "baseball_mlb": "KXMLBGAME",
    "soccer_epl": "KXEPLGAME",
    "soccer_spain_la_liga": "KXLALIGAGAME",
    "soccer_italy_serie_a": "KXSERIEAGAME",
    "soccer_uefa_champs_league": "KXUCLGAME",
    "basketball_ncaab": "KXNCAAMBGAME",
    "mma_mixed_martial_arts": "KXUFCFIGHT",
}
"""Odds API sport key → Kalshi full-game winner series (reference/kalshi.md §6). Sports listed
here without a :data:`TEAM_NAMES` table (UCL, NCAAB, MMA) are known leagues whose names we cannot
map yet: their events are reported unmatched with that reason."""


TEAM_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    # --- NBA (30) ---------------------------------------------------------------------------
    # Kalshi uses its own codes: BKN (not BRK), CHA (not CHO), GSW, NOP, PHX, SAS, UTA, WAS.
    "basketball_nba": {
        "ATL": ("Atlanta Hawks", "Hawks"),
        "BOS": ("Boston Celtics", "Celtics"),
        "BKN": ("Brooklyn Nets", "Nets"),
        "CHA": ("Charlotte Hornets", "Hornets"),
        "CHI": ("Chicago Bulls", "Bulls"),
        "CLE": ("Cleveland Cavaliers", "Cavaliers", "Cavs"),
        "DAL": ("Dallas Mavericks", "Mavericks", "Mavs"),
        "DEN": ("Denver Nuggets", "Nuggets"),
        "DET": ("Detroit Pistons", "Pistons"),
        "GSW": ("Golden State Warriors", "Warriors"),
        "HOU": ("Houston Rockets", "Rockets"),
        "IND": ("Indiana Pacers", "Pacers"),
        "LAC": ("Los Angeles Clippers", "LA Clippers", "Clippers"),
        "LAL": ("Los Angeles Lakers", "LA Lakers", "Lakers"),
        "MEM": ("Memphis Grizzlies", "Grizzlies"),
        "MIA": ("Miami Heat", "Heat"),
        "MIL": ("Milwaukee Bucks", "Bucks"),
        "MIN": ("Minnesota Timberwolves", "Timberwolves"),
        "NOP": ("New Orleans Pelicans", "Pelicans"),
        "NYK": ("New York Knicks", "Knicks"),
        "OKC": ("Oklahoma City Thunder", "Thunder"),
        "ORL": ("Orlando Magic", "Magic"),
        "PHI": ("Philadelphia 76ers", "Philadelphia Sixers", "76ers", "Sixers"),
        "PHX": ("Phoenix Suns", "Suns"),
        "POR": ("Portland Trail Blazers", "Portland Trailblazers", "Trail Blazers"),
        "SAC": ("Sacramento Kings", "Kings"),
        "SAS": ("San Antonio Spurs", "Spurs"),
        "TOR": ("Toronto Raptors", "Raptors"),
        "UTA": ("Utah Jazz", "Jazz"),
        "WAS": ("Washington Wizards", "Wizards"),
    },
    # --- NFL (32) ---------------------------------------------------------------------------
    # Seen in Kalshi tickers: DET BUF BAL PIT KC TB LAC NYG NYJ LV DAL ARI CLE ATL GB SEA MIA
    # CHI CAR DEN SF CIN IND TEN NE NO PHI WAS, JAC (`KXNFLGAME-26SEP13CLEJAC`) and the Rams as
    # both LA (`…26JAN04ARILA`) and LAR (`…26SEP21NYGLAR`). JAX/LAR/LA are accepted as
    # alternates because we could not tell which Kalshi uses today.
    "americanfootball_nfl": {
        "ARI": ("Arizona Cardinals", "Cardinals"),
        "ATL": ("Atlanta Falcons", "Falcons"),
        "BAL": ("Baltimore Ravens", "Ravens"),
        "BUF": ("Buffalo Bills", "Bills"),
        "CAR": ("Carolina Panthers", "Panthers"),
        "CHI": ("Chicago Bears", "Bears"),
        "CIN": ("Cincinnati Bengals", "Bengals"),
        "CLE": ("Cleveland Browns", "Browns"),
        "DAL": ("Dallas Cowboys", "Cowboys"),
        "DEN": ("Denver Broncos", "Broncos"),
        "DET": ("Detroit Lions", "Lions"),
        "GB": ("Green Bay Packers", "Packers"),
        "HOU": ("Houston Texans", "Texans"),
        "IND": ("Indianapolis Colts", "Colts"),
        "JAC": ("Jacksonville Jaguars", "Jaguars"),
        "KC": ("Kansas City Chiefs", "Chiefs"),
        "LV": ("Las Vegas Raiders", "Oakland Raiders", "Raiders"),
        "LAC": ("Los Angeles Chargers", "LA Chargers", "San Diego Chargers", "Chargers"),
        "LA": ("Los Angeles Rams", "LA Rams", "St. Louis Rams", "Rams"),
        "MIA": ("Miami Dolphins", "Dolphins"),
        "MIN": ("Minnesota Vikings", "Vikings"),
        "NE": ("New England Patriots", "Patriots"),
        "NO": ("New Orleans Saints", "Saints"),
        "NYG": ("New York Giants", "Giants"),
        "NYJ": ("New York Jets", "Jets"),
        "PHI": ("Philadelphia Eagles", "Eagles"),
        "PIT": ("Pittsburgh Steelers", "Steelers"),
        "SF": ("San Francisco 49ers", "49ers"),
        "SEA": ("Seattle Seahawks", "Seahawks"),
        "TB": ("Tampa Bay Buccaneers", "Buccaneers"),
        "TEN": ("Tennessee Titans", "Titans"),
        "WAS": (
            "Washington Commanders",
            "Washington Football Team",
            "Washington Redskins",
            "Commanders",
        ),
    },
    # --- NHL (32) ---------------------------------------------------------------------------
    # Seen in Kalshi tickers: LA, SJ, NJ, TB (two-letter forms), NYR NYI VGK VAN CAR MTL FLA STL
    # DAL EDM ANA MIN COL PIT PHI BOS TOR SEA; LAK/SJS/NJD/TBL also appear in third-party parsers,
    # so they are accepted as alternates. Utah's code is unverified.
    "icehockey_nhl": {
        "ANA": ("Anaheim Ducks", "Ducks"),
        "BOS": ("Boston Bruins", "Bruins"),
        "BUF": ("Buffalo Sabres", "Sabres"),
        "CGY": ("Calgary Flames", "Flames"),
        "CAR": ("Carolina Hurricanes", "Hurricanes"),
        "CHI": ("Chicago Blackhawks", "Blackhawks"),
        "COL": ("Colorado Avalanche", "Avalanche"),
        "CBJ": ("Columbus Blue Jackets", "Blue Jackets"),
        "DAL": ("Dallas Stars", "Stars"),
        "DET": ("Detroit Red Wings", "Red Wings"),
        "EDM": ("Edmonton Oilers", "Oilers"),
        "FLA": ("Florida Panthers", "Panthers"),
        "LA": ("Los Angeles Kings", "LA Kings", "Kings"),
        "MIN": ("Minnesota Wild", "Wild"),
        "MTL": ("Montréal Canadiens", "Canadiens"),
        "NSH": ("Nashville Predators", "Predators"),
        "NJ": ("New Jersey Devils", "Devils"),
        "NYI": ("New York Islanders", "Islanders"),
        "NYR": ("New York Rangers", "Rangers"),
        "OTT": ("Ottawa Senators", "Senators"),
        "PHI": ("Philadelphia Flyers", "Flyers"),
        "PIT": ("Pittsburgh Penguins", "Penguins"),
        "SJ": ("San Jose Sharks", "Sharks"),
        "SEA": ("Seattle Kraken", "Kraken"),
        "STL": ("St Louis Blues", "Blues"),
        "TB": ("Tampa Bay Lightning", "Lightning"),
        "TOR": ("Toronto Maple Leafs", "Maple Leafs"),
        "UTA": ("Utah Mammoth", "Utah Hockey Club", "Mammoth"),  # unverified code
        "VAN": ("Vancouver Canucks", "Canucks"),
        "VGK": ("Vegas Golden Knights", "Golden Knights"),
        "WSH": ("Washington Capitals", "Capitals"),  # unverified code
        "WPG": ("Winnipeg Jets", "Jets"),
    },
    # --- MLB (30) ---------------------------------------------------------------------------
    # Seen in Kalshi tickers: AZ (`…COLAZ`), ATH (`…KCATH`), CWS, WSH, SD, SF, TB, KC, LAD, LAA,
    # NYY, NYM, SEA, CLE, COL, CIN, STL, PIT, TOR, MIN, MIA, HOU, DET, BAL, ATL, PHI, BOS.
    "baseball_mlb": {
        "AZ": ("Arizona Diamondbacks", "Diamondbacks"),
        "ATL": ("Atlanta Braves", "Braves"),
        "BAL": ("Baltimore Orioles", "Orioles"),
        "BOS": ("Boston Red Sox", "Red Sox"),
        "CHC": ("Chicago Cubs", "Cubs"),
        "CWS": ("Chicago White Sox", "White Sox"),
        "CIN": ("Cincinnati Reds", "Reds"),
        "CLE": ("Cleveland Guardians", "Cleveland Indians", "Guardians"),
        "COL": ("Colorado Rockies", "Rockies"),
        "DET": ("Detroit Tigers", "Tigers"),
        "HOU": ("Houston Astros", "Astros"),
        "KC": ("Kansas City Royals", "Royals"),
        "LAA": ("Los Angeles Angels", "LA Angels", "Los Angeles Angels of Anaheim", "Angels"),
        "LAD": ("Los Angeles Dodgers", "LA Dodgers", "Dodgers"),
        "MIA": ("Miami Marlins", "Marlins"),
        "MIL": ("Milwaukee Brewers", "Brewers"),
        "MIN": ("Minnesota Twins", "Twins"),
        "NYM": ("New York Mets", "Mets"),
        "NYY": ("New York Yankees", "Yankees"),
        "ATH": ("Athletics", "Oakland Athletics", "Sacramento Athletics", "Las Vegas Athletics"),
        "PHI": ("Philadelphia Phillies", "Phillies"),
        "PIT": ("Pittsburgh Pirates", "Pirates"),
        "SD": ("San Diego Padres", "Padres"),
        "SF": ("San Francisco Giants", "Giants"),
        "SEA": ("Seattle Mariners", "Mariners"),
        "STL": ("St. Louis Cardinals", "Cardinals"),
        "TB": ("Tampa Bay Rays", "Rays"),
        "TEX": ("Texas Rangers", "Rangers"),
        "TOR": ("Toronto Blue Jays", "Blue Jays"),
        "WSH": ("Washington Nationals", "Nationals"),
    },
    # --- EPL: 2025-26 clubs + recently relegated -------------------------------------------
    # Seen in Kalshi tickers: ARS AVL BHA BRE CFC CHE CRY EVE FUL IPS LEE LFC MCI NEW NFO WHU WOL
    # (BOU via KXEPLBTTS). Kalshi mixes conventions, hence the alternates.
    "soccer_epl": {
        "ARS": ("Arsenal",),
        "AVL": ("Aston Villa",),
        "BOU": ("Bournemouth", "AFC Bournemouth"),
        "BRE": ("Brentford",),
        "BHA": ("Brighton and Hove Albion", "Brighton"),
        "BUR": ("Burnley",),  # unverified code
        "CFC": ("Chelsea",),
        "CRY": ("Crystal Palace",),
        "EVE": ("Everton",),
        "FUL": ("Fulham",),
        "LEE": ("Leeds United", "Leeds"),
        "LFC": ("Liverpool",),
        "MCI": ("Manchester City", "Man City"),
        "MUN": ("Manchester United", "Man United", "Man Utd"),  # unverified code
        "NEW": ("Newcastle United", "Newcastle"),
        "NFO": ("Nottingham Forest", "Nottm Forest", "Forest"),
        "SUN": ("Sunderland",),  # unverified code
        "TOT": ("Tottenham Hotspur", "Tottenham", "Spurs"),
        "WHU": ("West Ham United", "West Ham"),
        "WOL": ("Wolverhampton Wanderers", "Wolves"),
        # relegated 2024-25 / 2023-24
        "LEI": ("Leicester City", "Leicester"),  # unverified code
        "IPS": ("Ipswich Town", "Ipswich"),
        "SOU": ("Southampton",),  # unverified code
        "LUT": ("Luton Town", "Luton"),  # unverified code
        "SHU": ("Sheffield United", "Sheffield Utd"),  # unverified code
    },
    # --- Serie A: 2025-26 clubs + recent seasons (all teams in the samples) ---------------------
    # Seen in Kalshi tickers: ACM (Milan) INT JUV NAP LAZ VER CRE TOR BFC (Bologna) COM PAR GEN.
    "soccer_italy_serie_a": {
        "ATA": ("Atalanta BC", "Atalanta"),  # unverified code
        "BFC": ("Bologna", "Bologna FC 1909"),
        "CAG": ("Cagliari",),  # unverified code
        "COM": ("Como", "Como 1907"),
        "CRE": ("Cremonese", "US Cremonese"),
        "FIO": ("Fiorentina", "ACF Fiorentina"),  # unverified code
        "GEN": ("Genoa",),
        "VER": ("Hellas Verona FC", "Hellas Verona", "Verona"),
        "INT": ("Inter Milan", "Internazionale", "Internazionale Milano", "Inter"),
        "JUV": ("Juventus",),
        "LAZ": ("Lazio", "SS Lazio"),
        "LEC": ("Lecce", "US Lecce"),  # unverified code
        "ACM": ("AC Milan", "Milan"),
        "NAP": ("Napoli", "SSC Napoli"),
        "PAR": ("Parma", "Parma Calcio 1913", "Parma Calcio"),
        "PIS": ("Pisa",),  # unverified code
        "ROM": ("AS Roma", "Roma"),  # unverified code
        "SAS": ("Sassuolo", "US Sassuolo"),  # unverified code
        "TOR": ("Torino",),
        "UDI": ("Udinese",),  # unverified code
        # relegated in recent seasons (2021-22 .. 2024-25)
        "EMP": ("Empoli",),  # unverified code
        "VEN": ("Venezia",),  # unverified code
        "MON": ("Monza", "AC Monza"),  # unverified code
        "SPE": ("Spezia", "Spezia Calcio"),  # unverified code
        "SAL": ("Salernitana",),  # unverified code
        "SAM": ("Sampdoria",),  # unverified code
        "FRO": ("Frosinone",),  # unverified code
    },
    # --- La Liga: 2025-26 clubs + recently relegated (all teams in the samples) -----------------
    # Seen in Kalshi tickers: RMA BAR ATM ATH (Athletic Club) ALA CEL ELC ESP GET LEV OSA RSO VAL
    # VIL. (ATH here is Athletic Bilbao; in MLB it is the Athletics — tables are per league.)
    "soccer_spain_la_liga": {
        "ALA": ("Alavés", "Deportivo Alavés"),
        "ATH": ("Athletic Bilbao", "Athletic Club", "Athletic Club Bilbao"),
        "ATM": ("Atlético Madrid", "Atlético de Madrid", "Club Atlético de Madrid"),
        "BAR": ("Barcelona", "FC Barcelona"),
        "BET": ("Real Betis", "Betis"),  # unverified code
        "CEL": ("Celta Vigo", "Celta de Vigo", "RC Celta", "Celta"),
        "ELC": ("Elche", "Elche CF"),
        "ESP": ("Espanyol", "RCD Espanyol"),
        "GET": ("Getafe",),
        "GIR": ("Girona",),  # unverified code
        "LEV": ("Levante", "Levante UD"),
        "MLL": ("Mallorca", "RCD Mallorca"),  # unverified code
        "OSA": ("Osasuna", "CA Osasuna"),
        "OVI": ("Real Oviedo", "Oviedo"),  # unverified code
        "RAY": ("Rayo Vallecano",),  # unverified code
        "RMA": ("Real Madrid",),
        "RSO": ("Real Sociedad",),
        "SEV": ("Sevilla", "Sevilla FC"),  # unverified code
        "VAL": ("Valencia", "Valencia CF"),
        "VIL": ("Villarreal", "Villarreal CF"),
        # relegated 2024-25
        "LEG": ("Leganés", "CD Leganés"),  # unverified code
        "LPA": ("Las Palmas", "UD Las Palmas"),  # unverified code
        "VLL": ("Real Valladolid", "Valladolid"),  # unverified code
    },
}
"""``{sport_key: {primary Kalshi code: (Odds API display name, variants...)}}``."""


ALTERNATE_CODES: dict[str, dict[str, tuple[str, ...]]] = {
    "basketball_nba": {},
    "americanfootball_nfl": {
        "JAC": ("JAX",),  # JAC seen in Kalshi tickers; JAX is the NFL's own code
        "LA": ("LAR",),  # both seen in Kalshi tickers (2026)
        "WAS": ("WSH",),  # unverified
    },
    "icehockey_nhl": {
        "LA": ("LAK",),
        "NJ": ("NJD",),
        "SJ": ("SJS",),
        "TB": ("TBL",),
        "UTA": ("UTAH",),
        "WSH": ("WAS",),
    },
    "baseball_mlb": {
        "AZ": ("ARI",),  # ARI is MLB's own code; AZ is what Kalshi tickers show
        "ATH": ("OAK",),
        "CWS": ("CHW",),
        "WSH": ("WAS",),
    },
    "soccer_epl": {
        "BHA": ("BRI",),  # unverified
        "CFC": ("CHE",),  # both seen in Kalshi tickers
        "LFC": ("LIV",),  # LIV seen in a KXEPLBTTS ticker
        "NFO": ("NOT",),  # unverified (common third-party abbreviation)
    },
    "soccer_italy_serie_a": {  # all unverified
        "ACM": ("MIL",),
        "BFC": ("BOL",),
        "ROM": ("ASR",),
    },
    "soccer_spain_la_liga": {
        "RAY": ("RVM",),  # unverified
    },
}
"""``{sport_key: {primary code: (other codes Kalshi has used or may use for that team)}}``."""
