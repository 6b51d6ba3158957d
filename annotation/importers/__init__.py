"""Importers: parse and validate a file into plain rows (pure), then write them in one transaction (services).

Every parser returns rows or raises ImportRefused listing `file:line: field: problem` for each bad line (up to a
cap); every write service is atomic, so a refused file writes nothing.
"""

from __future__ import annotations

from annotation.importers.alpaca_eval import AlpacaVote, import_alpaca_eval, parse_alpaca_eval
from annotation.importers.battles import Battle, import_battles, parse_battles
from annotation.importers.errors import ImportRefused, LineError
from annotation.importers.gold import GoldFile, import_gold, parse_gold
from annotation.importers.outputs import OutputsFile, import_outputs, parse_outputs
from annotation.importers.ratings import RatingsPlan
from annotation.importers.summary import ImportSummary

__all__ = [
    "AlpacaVote",
    "Battle",
    "GoldFile",
    "ImportRefused",
    "ImportSummary",
    "LineError",
    "OutputsFile",
    "RatingsPlan",
    "import_alpaca_eval",
    "import_battles",
    "import_gold",
    "import_outputs",
    "parse_alpaca_eval",
    "parse_battles",
    "parse_gold",
    "parse_outputs",
]
