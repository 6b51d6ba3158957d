"""manage.py import_alpaca_eval FILE --campaign SLUG: import AlpacaEval human or model annotations as ratings."""

from __future__ import annotations

from annotation.importers import import_alpaca_eval, parse_alpaca_eval
from annotation.management.commands._importing import RatingsImportCommand


class Command(RatingsImportCommand):
    help = (
        "Import AlpacaEval annotations (JSON array or JSONL: instruction, output_1, output_2, preference 1 / 2 / "
        "1.5 or 0 for a tie, annotator or annotator_index, optional generator_1/2). The campaign is created when it "
        "does not exist. Atomic: a file with any bad line writes nothing."
    )
    parse = staticmethod(parse_alpaca_eval)
    write_import = staticmethod(import_alpaca_eval)
